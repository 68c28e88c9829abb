import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { App } from 'aws-cdk-lib';
import { parseDeploymentConfig } from '../lib/config/deployment-config.ts';
import { buildEdgeApp } from '../lib/infra/edge-app.ts';

// The CDK app: `npx cdk synth -c config=path/to/deployment.json` (default: the example config).
const app = new App();
const configPath = resolve(String(app.node.tryGetContext('config') ?? 'config/example.deployment.json'));
const config = parseDeploymentConfig(JSON.parse(readFileSync(configPath, 'utf8')));
buildEdgeApp(config, { app });
app.synth();
