import { describe, expect, it } from 'vitest';
import { ConfigError, parseEdgeConfig } from '../../lib/config/edge-config.ts';

const paths = {
  runDir: '/run/edge',
  luaDir: '/app/lua',
  cacheDir: '/cache',
  fallbackCert: '/run/edge/fallback.crt',
  fallbackKey: '/run/edge/fallback.key',
  errorLog: '/dev/stderr',
  accessLog: '/dev/stdout',
};

describe('edge config', () => {
  it('fills production defaults', () => {
    const config = parseEdgeConfig({ platformDomain: 'platform.example', paths });
    expect(config.listen).toMatchObject({ httpPort: 80, httpsPort: 443, controlAddress: '127.0.0.1' });
    expect(config.tls.engine).toBe('native');
    expect(config.redis.prefix).toBe('edge');
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('names every invalid field in one error', () => {
    expect(() =>
      parseEdgeConfig({
        platformDomain: 'Not A Domain',
        paths,
        listen: { httpsPort: 70000 },
        sharedDicts: { certs: 'lots' },
        tls: { engine: 'openssl' },
      }),
    ).toThrow(
      new ConfigError(
        [
          'invalid edge config:',
          '  platformDomain: must be a lowercase DNS name',
          '  listen.httpsPort: Too big: expected number to be <=65535',
          '  sharedDicts.certs: must be an nginx size such as 64m',
          '  tls.engine: Invalid option: expected one of "native"|"auto-ssl"',
        ].join('\n'),
      ),
    );
  });

  it('refuses unknown keys, so a typo does not silently fall back to a default', () => {
    expect(() => parseEdgeConfig({ platformDomain: 'platform.example', paths, platfromDomain: 'x' })).toThrow(
      /Unrecognized key: "platfromDomain"/,
    );
  });

  it.each(['0.0.0.0', '8.8.8.8', '172.32.0.1'])('refuses a control listener on %s', (address) => {
    expect(() =>
      parseEdgeConfig({ platformDomain: 'platform.example', paths, listen: { controlAddress: address } }),
    ).toThrow(
      'listen.controlAddress: must be a loopback or private (VPC) address, never a public or wildcard one',
    );
  });

  it.each(['127.0.0.2', '10.1.2.3', '172.16.0.9', '192.168.1.1'])(
    'accepts a control listener on %s',
    (address) => {
      const config = parseEdgeConfig({
        platformDomain: 'platform.example',
        paths,
        listen: { controlAddress: address },
      });
      expect(config.listen.controlAddress).toBe(address);
    },
  );

  it('accepts only a 43-character base64url account thumbprint', () => {
    expect(() =>
      parseEdgeConfig({ platformDomain: 'platform.example', paths, acme: { accountThumbprint: 'short' } }),
    ).toThrow(/acme.accountThumbprint/);
  });
});
