/**
 * Production TLS as the README describes it: HTTPS and MQTTS listeners beside the plain ones, with
 * the operator's own certificate (TLS_CERTIFICATE / TLS_PRIVATEKEY), verified by standard clients
 * (mosquitto_pub --cafile, Node's https) against that certificate. Credentials are still required.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { get } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../launcher/harper-process.js';
import { startTestHarper, type TestHarper } from './harness/harper.js';
import { basicAuth, rest } from './harness/rest.js';

const keys = mkdtempSync(join(tmpdir(), 'backbone-tls-'));
const certificate = join(keys, 'cert.pem');
const privateKey = join(keys, 'key.pem');
let harper: TestHarper;
let httpsPort: number;
let mqttsPort: number;

beforeAll(async () => {
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '2',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost,IP:127.0.0.1',
      '-keyout',
      privateKey,
      '-out',
      certificate,
    ],
    { stdio: 'ignore' },
  );
  httpsPort = await freePort();
  mqttsPort = await freePort();
  harper = await startTestHarper({
    env: {
      HTTP_SECUREPORT: String(httpsPort),
      MQTT_NETWORK_SECUREPORT: String(mqttsPort),
      TLS_CERTIFICATE: certificate,
      TLS_PRIVATEKEY: privateKey,
    },
  });
});

afterAll(async () => {
  await harper?.dispose();
  rmSync(keys, { recursive: true, force: true });
});

function httpsGet(path: string, authorization?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    get(
      {
        host: 'localhost',
        port: httpsPort,
        path,
        ca: readFileSync(certificate),
        headers: authorization ? { authorization } : {},
      },
      (res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    ).on('error', reject);
  });
}

describe('TLS with your own certificate', () => {
  it('mosquitto_pub over MQTTS (certificate verified) stores a reading; HTTPS reads it back', async () => {
    const { admin } = harper.endpoints;
    const published = spawnSync(
      'mosquitto_pub',
      [
        '-h',
        'localhost',
        '-p',
        String(mqttsPort),
        '--cafile',
        certificate,
        '-u',
        admin.username,
        '-P',
        admin.password,
        '-q',
        '1',
        '-r',
        '-t',
        'sensors/tls-1',
        '-m',
        JSON.stringify({ location: 'secure', temperature: 12 }),
      ],
      { encoding: 'utf8' },
    );
    expect(published.status, published.stderr).toBe(0);
    const response = await httpsGet('/sensors/tls-1', basicAuth(admin));
    expect(response.status).toBe(200);
    expect(JSON.parse(response.body)).toMatchObject({ id: 'tls-1', location: 'secure', temperature: 12 });
  });

  it('still refuses anonymous clients on the TLS listeners', async () => {
    expect((await httpsGet('/sensors/tls-1')).status).toBe(401);
    const anonymous = mqtt.connectAsync(`mqtts://localhost:${mqttsPort}`, {
      ca: readFileSync(certificate),
      reconnectPeriod: 0,
      protocolVersion: 5,
    });
    await expect(anonymous).rejects.toThrow(/Not authorized|Bad user ?name or password/i);
  });

  it('keeps the plain listeners working beside them', async () => {
    expect((await rest(harper.endpoints, 'GET', '/sensors/tls-1')).status).toBe(200);
  });
});
