import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { acknowledge } from './nag.ts';

export interface OriginBucketProps {
  /**
   * Serve the bucket through the S3 website endpoint (the `s3-website` origin type). The website
   * endpoint only answers anonymous requests, so objects become publicly readable through the
   * bucket policy. Default: false, the bucket stays fully private.
   */
  readonly websiteHosting?: boolean;
}

/**
 * Tenants' static sites, `<tenant prefix>/...`. Guarded against the usual public-access mistakes:
 * ACLs are disabled (bucket-owner-enforced) and blocked, TLS is enforced for the REST API, and
 * even with website hosting the only public grant is s3:GetObject in the policy, never listing
 * and never an ACL.
 */
export class OriginBucket extends Construct {
  readonly bucket: s3.Bucket;
  readonly websiteHosting: boolean;

  constructor(scope: Construct, id: string, props: OriginBucketProps = {}) {
    super(scope, id);
    this.websiteHosting = props.websiteHosting ?? false;
    const logs = new s3.Bucket(this, 'AccessLogs', {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
      lifecycleRules: [{ expiration: Duration.days(90) }],
      removalPolicy: RemovalPolicy.RETAIN,
    });

    this.bucket = new s3.Bucket(this, 'Bucket', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: !this.websiteHosting,
      versioned: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      serverAccessLogsBucket: logs,
      serverAccessLogsPrefix: 'origin/',
      removalPolicy: RemovalPolicy.RETAIN,
      lifecycleRules: [{ noncurrentVersionExpiration: Duration.days(30) }],
      ...(this.websiteHosting
        ? {
            websiteIndexDocument: 'index.html',
            websiteErrorDocument: '404.html',
            // ACLs stay blocked; only the bucket policy below may grant public read.
            blockPublicAccess: new s3.BlockPublicAccess({
              blockPublicAcls: true,
              ignorePublicAcls: true,
              blockPublicPolicy: false,
              restrictPublicBuckets: false,
            }),
          }
        : { blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL }),
    });
    if (this.websiteHosting) {
      this.bucket.addToResourcePolicy(
        new iam.PolicyStatement({
          sid: 'WebsiteEndpointReadsObjectsOnly',
          principals: [new iam.AnyPrincipal()],
          actions: ['s3:GetObject'],
          resources: [this.bucket.arnForObjects('*')],
        }),
      );
      acknowledge(this.bucket, [
        {
          id: 'AwsSolutions-S10',
          reason:
            'The S3 website endpoint is HTTP-only; TLS is terminated at the edge. Website hosting is opt-in (originBucket.websiteHosting) and documented in docs/infrastructure.md.',
        },
        {
          id: 'AwsSolutions-S5',
          reason:
            'The edge tasks are the CDN in front of this bucket (no CloudFront, so no OAI/OAC); the S3 website endpoint only serves anonymous requests (opt-in, documented).',
        },
        {
          id: 'AwsSolutions-S2',
          reason:
            'Public ACLs stay blocked; public policies are allowed only because S3 website hosting needs anonymous s3:GetObject (opt-in, documented).',
        },
      ]);
    }
  }
}
