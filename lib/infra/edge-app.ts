import { App, type AppProps, Tags, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { type DeploymentConfig, deploymentNames } from '../config/deployment-config.ts';
import type { EdgeImages } from './edge-images.ts';
import { GlobalStack } from './global-stack.ts';
import { RegionalStack } from './regional-stack.ts';

export interface EdgeAppOptions {
  readonly app?: App;
  readonly appProps?: AppProps;
  /** Run cdk-nag's AwsSolutions rules on every stack. Default: true. */
  readonly nag?: boolean;
  /** Override the images (tests use registry images so synth does not stage Docker contexts). */
  readonly images?: EdgeImages;
}

export interface EdgeApp {
  readonly app: App;
  readonly global: GlobalStack;
  readonly regions: readonly RegionalStack[];
}

/** One global stack in the home region and one regional stack per edge region, each with explicit env. */
export function buildEdgeApp(config: DeploymentConfig, options: EdgeAppOptions = {}): EdgeApp {
  const app = options.app ?? new App(options.appProps);
  const names = deploymentNames(config);
  const global = new GlobalStack(app, names.globalStack, {
    config,
    env: { account: config.account, region: config.homeRegion },
    description: `Edge CDN ${config.name}: shared topic, state table, ACME account, DNS`,
  });
  const regions = config.regions.map((regionConfig) => {
    const stack = new RegionalStack(app, names.regionalStack(regionConfig.region), {
      config,
      regionConfig,
      env: { account: config.account, region: regionConfig.region },
      description: `Edge CDN ${config.name}: edge service in ${regionConfig.region}`,
      ...(options.images ? { images: options.images } : {}),
    });
    // Table and secret replicas must exist before a task starts and reads them.
    stack.addStackDependency(global);
    return stack;
  });
  Tags.of(app).add('edge:deployment', config.name);
  if (options.nag ?? true) Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
  return { app, global, regions };
}
