// Rollup 4 as the package README says: node-resolve finds the package, import-meta-assets emits the files its
// loader names with new URL(..., import.meta.url).
import { nodeResolve } from '@rollup/plugin-node-resolve';
import { importMetaAssets } from '@web/rollup-plugin-import-meta-assets';

export default {
  input: 'src/main.js',
  output: { dir: 'dist', format: 'es' },
  plugins: [nodeResolve(), importMetaAssets()],
};
