import { hvkitTsup } from '../../tsup.shared';

// shims: src/simulator.ts finds the shipped seed database from import.meta.url, also in the CommonJS build.
export default hvkitTsup({ index: 'src/index.ts', simulator: 'src/simulator.ts' }, { shims: true });
