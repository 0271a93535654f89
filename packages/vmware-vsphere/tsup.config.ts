import { hvkitTsup } from '../../tsup.shared';

// shims: src/testing.ts finds the shipped cassettes from import.meta.url, also in the CommonJS build.
export default hvkitTsup(
  { index: 'src/index.ts', soap: 'src/soap.ts', testing: 'src/testing.ts' },
  { shims: true },
);
