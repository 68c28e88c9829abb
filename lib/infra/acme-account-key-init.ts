import { fileURLToPath } from 'node:url';
import { CustomResource, Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';

const HANDLER_DIR = fileURLToPath(new URL('./acme-account-key/', import.meta.url));

export interface AcmeAccountKeyInitProps {
  /** The deployment's ACME account secret (primary, home region). */
  readonly secret: secretsmanager.ISecret;
  readonly logRetention: logs.RetentionDays;
}

/**
 * Puts an ACME account key (ECDSA P-256, PKCS#8 PEM) into the account secret at deploy time
 * unless it already holds one the issuer accepts: the first `cdk deploy` needs no hand step and
 * later deploys keep the account. Secrets Manager replicates the value to every edge region.
 * The handler (acme-account-key/index.mjs) answers CloudFormation itself; no provider framework.
 */
export class AcmeAccountKeyInit extends Construct {
  readonly resource: CustomResource;

  constructor(scope: Construct, id: string, props: AcmeAccountKeyInitProps) {
    super(scope, id);
    const logGroup = new logs.LogGroup(this, 'Logs', {
      retention: props.logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    // Its own role: only this secret, only its own log group (no managed policy).
    const role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: 'Creates the ACME account key in its secret when missing',
    });
    role.addToPolicy(
      new iam.PolicyStatement({
        actions: ['secretsmanager:GetSecretValue', 'secretsmanager:PutSecretValue'],
        resources: [props.secret.secretArn],
      }),
    );
    role.addToPolicy(
      new iam.PolicyStatement({
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [logGroup.logGroupArn],
      }),
    );
    const fn = new lambda.Function(this, 'Function', {
      runtime: lambda.Runtime.NODEJS_24_X,
      handler: 'index.handler',
      code: lambda.Code.fromAsset(HANDLER_DIR, { exclude: ['*.d.mts'] }),
      role,
      logGroup,
      timeout: Duration.seconds(30),
      memorySize: 256,
      description: 'Custom::AcmeAccountKey: creates the ACME account key unless the secret holds one',
    });
    fn.node.addDependency(role);
    this.resource = new CustomResource(this, 'Resource', {
      serviceToken: fn.functionArn,
      resourceType: 'Custom::AcmeAccountKey',
      // A replaced secret has a new ARN: the resource updates and fills the new one.
      properties: { SecretId: props.secret.secretArn },
    });
  }
}
