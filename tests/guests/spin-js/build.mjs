// build.mjs, as Spin's http-js template (Spin 3.4 to 3.6) has it: bundle with esbuild, leaving the WIT
// imports (e.g. `fermyon:spin/key-value@2.0.0`) to the componentizer, which `npm run build` runs next (j2w).
import { build } from 'esbuild';
import { SpinEsbuildPlugin } from '@spinframework/build-tools/plugins/esbuild/index.js';

const spinPlugin = await SpinEsbuildPlugin();

await build({
  entryPoints: ['./src/index.js'],
  outfile: './build/bundle.js',
  bundle: true,
  format: 'esm',
  platform: 'browser',
  sourcemap: true,
  minify: false,
  plugins: [spinPlugin],
  logLevel: 'error',
});
