import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import * as cr from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';
import { acknowledge } from './nag.ts';

export interface PrivateKeyPrimaryProps {
  /** Alias of the key in the home region, e.g. `alias/edge-private-keys`. */
  readonly alias: string;
  /** SSM parameter (home region) that receives the primary key's ARN for the regional stacks. */
  readonly primaryArnParameterName: string;
}

/**
 * The multi-region KMS key that wraps the data keys of the certificates' private keys (home
 * region, primary). Every other edge region holds a replica (PrivateKeyReplica): same key
 * material and the same `mrk-` key id, so a private key sealed in one region opens in any other
 * without calling back to the home region.
 */
export class PrivateKeyPrimary extends Construct {
  readonly key: kms.Key;
  readonly primaryArnParameter: ssm.StringParameter;

  constructor(scope: Construct, id: string, props: PrivateKeyPrimaryProps) {
    super(scope, id);
    this.key = new kms.Key(this, 'Key', {
      alias: props.alias,
      description: 'Wraps the data keys of the edge certificates private keys (multi-region primary)',
      multiRegion: true,
      enableKeyRotation: true,
      pendingWindow: Duration.days(30),
      // Losing the key loses every private key in the table.
      removalPolicy: RemovalPolicy.RETAIN,
    });
    // A plain parameter in the home region: the regional stacks read it at deploy time by its
    // fixed name, so no stack export couples them (see PrivateKeyReplica).
    this.primaryArnParameter = new ssm.StringParameter(this, 'PrimaryArn', {
      parameterName: props.primaryArnParameterName,
      stringValue: this.key.keyArn,
      description:
        'ARN of the multi-region primary key of the edge private keys; read by the regional stacks',
    });
  }
}

export interface PrivateKeyReplicaProps {
  /** The home region, where the primary key and its ARN parameter live. */
  readonly homeRegion: string;
  /** Alias given to the key in this region (the same name as the primary's alias). */
  readonly alias: string;
  readonly primaryArnParameterName: string;
}

/**
 * This region's copy of the private-key key. In the home region it is the primary itself (its
 * ARN resolved from the SSM parameter by CloudFormation); elsewhere an `AWS::KMS::ReplicaKey` of
 * the primary with its own alias. `keyArn` always names a key in this stack's region.
 *
 * The primary's ARN reaches other regions through a read of the home-region parameter at deploy
 * time (one SDK call by a custom resource) rather than `crossRegionReferences`: that would pin
 * the global stack's export for as long as any region references it.
 */
export class PrivateKeyReplica extends Construct {
  readonly keyArn: string;

  constructor(scope: Construct, id: string, props: PrivateKeyReplicaProps) {
    super(scope, id);
    const stack = Stack.of(this);
    if (stack.region === props.homeRegion) {
      this.keyArn = ssm.StringParameter.valueForStringParameter(this, props.primaryArnParameterName);
      return;
    }
    const parameterArn = stack.formatArn({
      service: 'ssm',
      region: props.homeRegion,
      resource: 'parameter',
      resourceName: props.primaryArnParameterName.replace(/^\//, ''),
    });
    const read = new cr.AwsCustomResource(this, 'PrimaryArn', {
      onUpdate: {
        service: 'SSM',
        action: 'getParameter',
        parameters: { Name: props.primaryArnParameterName },
        region: props.homeRegion,
        physicalResourceId: cr.PhysicalResourceId.of(props.primaryArnParameterName),
      },
      policy: cr.AwsCustomResourcePolicy.fromStatements([
        new iam.PolicyStatement({ actions: ['ssm:GetParameter'], resources: [parameterArn] }),
      ]),
      installLatestAwsSdk: false,
    });
    // The SDK-call provider is one function per stack, created with CDK's basic execution role.
    const provider = stack.node.tryFindChild(
      `AWS${cr.AwsCustomResource.PROVIDER_FUNCTION_UUID.replace(/-/g, '')}`,
    );
    if (provider) {
      acknowledge(provider, [
        {
          id: 'AwsSolutions-IAM4',
          reason:
            'CDK creates the AwsCustomResource provider with AWSLambdaBasicExecutionRole (write its own logs); its only other grant is ssm:GetParameter on the one parameter.',
          findings: ['Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole'],
        },
      ]);
    }
    const replica = new kms.CfnReplicaKey(this, 'Key', {
      primaryKeyArn: read.getResponseField('Parameter.Value'),
      description: `Wraps the data keys of the edge certificates private keys (replica in ${stack.region})`,
      pendingWindowInDays: 30,
      keyPolicy: new iam.PolicyDocument({
        statements: [
          // The account administers the key through IAM, as for the primary (CDK's default policy).
          new iam.PolicyStatement({
            actions: ['kms:*'],
            principals: [new iam.AccountRootPrincipal()],
            resources: ['*'],
          }),
        ],
      }),
    });
    replica.applyRemovalPolicy(RemovalPolicy.RETAIN);
    new kms.CfnAlias(this, 'Alias', { aliasName: props.alias, targetKeyId: replica.attrKeyId });
    this.keyArn = replica.attrArn;
  }
}
