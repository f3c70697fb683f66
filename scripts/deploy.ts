/**
 * `npm run deploy`: deploys this component to a running Harper instance (hosted or self-managed)
 * with Harper's own `deploy` command (the deploy_component operation), then waits for its restart.
 *
 *   CLI_TARGET=https://harper.example.com:9925 CLI_TARGET_USERNAME=admin CLI_TARGET_PASSWORD=... \
 *     npm run deploy -- project=iot-backbone replicated=true
 *
 * Target and credentials follow Harper's CLI conventions (CLI_TARGET, CLI_TARGET_USERNAME,
 * CLI_TARGET_PASSWORD; without them, the local `npm start` on port 9925 and its saved admin).
 * Arguments are Harper's own: project=<name> (default $DEPLOY_PROJECT or iot-backbone),
 * restart=rolling|true|false (default rolling), replicated=true (every node of a cluster).
 * --stage <dir> only writes the package into <dir> and lists it.
 *
 * Harper's CLI packs the folder it runs in. It runs here in a staging folder holding exactly what
 * Harper needs to run the component (compiled code, schema, roles, config, built web assets and a
 * package.json without dependencies), so nothing of the local data (.harper/: data, logs, saved
 * credentials), test scratch, sources or node_modules can travel with it.
 */
import { spawn } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { builtinModules } from 'node:module';
import { dataFolder, targetCredentials } from '../launcher/credentials.js';
import {
  COMPONENT_DIR,
  HARPER_BIN,
  HARPER_SETTINGS,
  OPERATIONS_BODY_BYTES,
  harperSafeEnvironment,
  type AdminCredentials,
} from '../launcher/harper-process.js';
import { OperationsClient } from '../launcher/operations-client.js';

/** What the deployed component consists of, relative to the repository (config.yaml names them). */
const PACKAGE_CONTENTS = [
  'config.yaml',
  'schema.graphql',
  'roles.yaml',
  'dist/resources.js',
  'dist/lib',
  'dist/shared',
  'web/index.html',
  'web/styles.css',
  'web/favicon.svg',
  'web/dist',
  'web/vendor',
];

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((file) => statSync(join(dir, file)).isFile())
    .map((file) => file.split('\\').join('/'))
    .sort();
}

/**
 * Harper links its own `harperdb` package into a deployed component, and npm installs whatever
 * package.json lists. Our runtime code imports only `harperdb` and Node's built-ins, so the
 * package lists no dependencies and nothing is downloaded on the target; this check keeps it so.
 */
function checkRuntimeImports(stageDir: string): void {
  const builtins = new Set(builtinModules);
  for (const file of filesUnder(join(stageDir, 'dist')).filter((name) => name.endsWith('.js'))) {
    const code = readFileSync(join(stageDir, 'dist', file), 'utf8');
    for (const [, specifier] of code.matchAll(
      /(?:\bfrom\s*|\bimport\s*\(?\s*|\brequire[A-Za-z]*\(\s*)['"]([^'"]+)['"]/g,
    )) {
      const bare = specifier.startsWith('node:') ? specifier.slice(5) : specifier;
      if (specifier.startsWith('.') || specifier === 'harperdb' || builtins.has(bare)) continue;
      throw new Error(
        `dist/${file} imports "${specifier}", which a deployed component cannot resolve: only harperdb and Node built-ins are available there`,
      );
    }
  }
}

/** Writes the deployable package into `stageDir`; returns its files (relative paths, sorted). */
function stagePackage(stageDir: string): string[] {
  for (const entry of PACKAGE_CONTENTS) {
    if (!existsSync(join(COMPONENT_DIR, entry))) throw new Error(`${entry} is missing: run npm run build first`);
  }
  mkdirSync(stageDir, { recursive: true });
  for (const entry of PACKAGE_CONTENTS) {
    // Source maps point at TypeScript sources that are not shipped.
    cpSync(join(COMPONENT_DIR, entry), join(stageDir, entry), {
      recursive: true,
      filter: (source) => !source.endsWith('.map'),
    });
  }
  const own = JSON.parse(readFileSync(join(COMPONENT_DIR, 'package.json'), 'utf8')) as {
    name: string;
    version: string;
    description?: string;
    engines?: unknown;
  };
  // "type": "module" makes Node load dist/ as the ES modules tsc wrote.
  const manifest = {
    name: own.name,
    version: own.version,
    description: own.description,
    private: true,
    type: 'module',
    engines: own.engines,
  };
  writeFileSync(join(stageDir, 'package.json'), JSON.stringify(manifest, null, 2) + '\n');
  checkRuntimeImports(stageDir);
  return filesUnder(stageDir);
}

interface DeployOptions {
  target: string;
  admin: AdminCredentials;
  project: string;
  restart: 'rolling' | 'true' | 'false';
  replicated: boolean;
}

interface DeployResult {
  message: string;
  files: string[];
}

function runHarperCli(
  args: string[],
  cwd: string,
  admin: AdminCredentials,
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    // Credentials go by environment (Harper's convention), never on the command line where `ps` shows them.
    const child = spawn(process.execPath, [HARPER_BIN, ...args], {
      cwd,
      env: {
        ...harperSafeEnvironment(process.env),
        CLI_TARGET_USERNAME: admin.username,
        CLI_TARGET_PASSWORD: admin.password,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk));
    child.on('exit', (code) => resolve({ code, output }));
  });
}

/** Waits for Harper's restart job (the deploy answers before the restart is done). */
async function waitForJob(client: OperationsClient, id: string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    // The operations API may be restarting itself: a refused call is retried.
    const job = await client
      .call<{ status?: string; message?: string }[] | { status?: string; message?: string }>({
        operation: 'get_job',
        id,
      })
      .catch(() => undefined);
    const record = Array.isArray(job) ? job[0] : job;
    if (record?.status === 'COMPLETE') return;
    if (record?.status === 'ERROR')
      throw new Error(`the restart after the deploy failed: ${record.message ?? 'no message'}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  throw new Error(`the restart after the deploy did not finish within ${timeoutMs} ms`);
}

/**
 * Harper settings the component relies on, set on the target before the deploy so that the
 * restart after it applies them (set_configuration takes effect on restart), as `npm start` sets
 * them (HARPER_SETTINGS in launcher/harper-process.ts): REST bodies cut off at MAX_WIRE_BYTES, and
 * write prefetching off.
 * Harper's operations API inherits that limit unless it has one of its own, and this deploy (and
 * the next) sends the whole package through it: a target without one gets Harper's default,
 * stated explicitly. Only the target node is configured; with replicated=true, configure the
 * others the same way (README, Security).
 */
async function applyHarperLimits(client: OperationsClient): Promise<void> {
  const config = await client.call<{ operationsApi?: { network?: { maxRequestBodySize?: unknown } } }>({
    operation: 'get_configuration',
  });
  const settings: Record<string, unknown> = {
    http_maxRequestBodySize: HARPER_SETTINGS.http.maxRequestBodySize,
    storage_prefetchWrites: HARPER_SETTINGS.storage.prefetchWrites,
  };
  if (config.operationsApi?.network?.maxRequestBodySize === undefined)
    settings.operationsApi_network_maxRequestBodySize = OPERATIONS_BODY_BYTES;
  await client.call({ operation: 'set_configuration', ...settings });
}

async function deploy(options: DeployOptions): Promise<DeployResult> {
  const stageDir = mkdtempSync(join(tmpdir(), `${options.project}-`));
  try {
    const files = stagePackage(stageDir);
    await applyHarperLimits(new OperationsClient(options.target, options.admin));
    const args = [
      'deploy',
      `target=${options.target}`,
      `project=${options.project}`,
      `restart=${options.restart}`,
      ...(options.replicated ? ['replicated=true'] : []),
    ];
    const { code, output } = await runHarperCli(args, stageDir, options.admin);
    // Harper's CLI prints the answer as YAML and exits 0 even when the operation failed.
    const message = /^message: "?(.*?)"?$/m.exec(output)?.[1];
    if (code !== 0 || !message || !/deployed/i.test(message))
      throw new Error(`harperdb deploy failed: ${output.trim() || `exit code ${code}`}`);
    const job = /^restartJobId: (\S+)$/m.exec(output)?.[1];
    if (job) await waitForJob(new OperationsClient(options.target, options.admin), job);
    return { message, files };
  } finally {
    rmSync(stageDir, { recursive: true, force: true });
  }
}

/** Harper-style `key=value` arguments, then the environment, then defaults. */
function deployOptions(argv: string[], env: NodeJS.ProcessEnv = process.env): Omit<DeployOptions, 'admin'> {
  const args = new Map<string, string>();
  for (const arg of argv) {
    const match = /^([a-z_]+)=(.*)$/.exec(arg);
    if (!match || !['target', 'project', 'restart', 'replicated'].includes(match[1]))
      throw new Error(`unknown argument "${arg}" (target=, project=, restart=, replicated=)`);
    args.set(match[1], match[2]);
  }
  const target = args.get('target') ?? env.CLI_TARGET ?? `http://localhost:${env.OPERATIONSAPI_NETWORK_PORT || 9925}`;
  const project = args.get('project') ?? env.DEPLOY_PROJECT ?? 'iot-backbone';
  if (!/^[a-zA-Z0-9_-]+$/.test(project))
    throw new Error(`project "${project}" must be letters, digits, _ and - (it names a folder on the target)`);
  const restart = args.get('restart') ?? env.DEPLOY_RESTART ?? 'rolling';
  if (restart !== 'rolling' && restart !== 'true' && restart !== 'false')
    throw new Error('restart must be rolling, true or false');
  const replicated = (args.get('replicated') ?? env.DEPLOY_REPLICATED ?? 'false') === 'true';
  return { target, project, restart, replicated };
}

async function main(argv: string[]): Promise<void> {
  const stageAt = argv.indexOf('--stage');
  if (stageAt >= 0) {
    const dir = argv[stageAt + 1];
    if (!dir) throw new Error('--stage needs a folder');
    const files = stagePackage(dir);
    console.log(files.join('\n'));
    return;
  }
  const options = deployOptions(argv);
  const admin = targetCredentials(join(dataFolder(), 'credentials.json'));
  if (!admin) throw new Error('no admin credentials for the target: set CLI_TARGET_USERNAME and CLI_TARGET_PASSWORD');
  console.log(
    `Deploying ${options.project} to ${options.target}${options.replicated ? ' and every node it replicates with' : ''} (restart: ${options.restart})...`,
  );
  const result = await deploy({ ...options, admin });
  console.log(
    `${result.message}\n${result.files.length} files deployed (compiled code, schema, roles, config, web assets); restart done.`,
  );
}

main(process.argv.slice(2)).catch((error: unknown) => {
  console.error(`error: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
