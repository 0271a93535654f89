import { hvkitTsup } from '../../tsup.shared';

export default hvkitTsup({ index: 'src/index.ts' });
