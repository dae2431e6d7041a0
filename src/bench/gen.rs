//! The benchmarks' one data generator: a seeded PRNG ([`Rng`], SplitMix64) and one
//! CloudTrail-record generator ([`Generator`]), plus the small helpers they share
//! ([`hex`], [`uuid`], [`cloudtrail_time`]).
//!
//! Every record is drawn from the seed alone (never the clock): the same seed gives the
//! same records, byte for byte. The mix is that of a busy account: about 70% read-only
//! calls, about 6% failing ones, writes naming security groups, instances, load
//! balancers and target groups, roles, functions, tables, buckets and more (by id, name
//! or ARN), and four shapes of `userIdentity` (assumed role, IAM user, AWS service,
//! root).

use std::fmt::Write as _;

/// SplitMix64: small, fast, deterministic; any seed (0 included) is a good one.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator whose draws are fixed by `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// True with probability `per_mille` / 1000.
    pub fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }

    /// One element of `xs`, which must not be empty.
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
}

/// Appends `digits` random lower-case hex digits to `out`.
pub fn hex(rng: &mut Rng, out: &mut String, digits: usize) {
    let mut left = digits;
    while left > 0 {
        let d = left.min(16);
        let v = rng.next_u64();
        let _ = write!(out, "{:0width$x}", v >> (64 - 4 * d), width = d);
        left -= d;
    }
}

/// Appends a random version-4 UUID (`8-4-4-4-12` hex digits) to `out`.
pub fn uuid(rng: &mut Rng, out: &mut String) {
    let a = rng.next_u64();
    let b = rng.next_u64();
    let _ = write!(
        out,
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        0x8000 | (b >> 48 & 0x3fff),
        b & 0xffff_ffff_ffff
    );
}

/// 2025-10-01T00:00:00Z: [`Generator::line`] starts its month of records here (fixed,
/// never the clock).
pub const BASE_MS: i64 = 1_759_276_800_000;

/// A time as CloudTrail writes it: UTC, whole seconds (`2025-10-01T00:00:00Z`).
pub fn cloudtrail_time(ms: i64) -> String {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) => t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        None => "1970-01-01T00:00:00Z".to_string(),
    }
}

/// The simulated account's id.
pub const ACCOUNT: &str = "123456789012";
const REGIONS: &[&str] = &[
    "us-east-1",
    "us-east-1",
    "us-east-1",
    "us-west-2",
    "eu-west-1",
];
const USERS: &[&str] = &[
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi",
];
const ROLES: &[&str] = &[
    "deploy-pipeline",
    "platform-admin",
    "ecs-task-api",
    "lambda-orders-role",
    "readonly-audit",
    "karpenter-node",
    "ops-oncall",
    "terraform-ci",
];
const SERVICES: &[&str] = &[
    "api", "web", "orders", "payments", "search", "auth", "cart", "worker",
];
const CLUSTERS: &[&str] = &["prod", "staging"];
const FUNCTIONS: &[&str] = &[
    "orders-fn",
    "thumbnails",
    "auth-authorizer",
    "billing-sync",
    "etl-nightly",
    "webhook-relay",
];
const TABLES: &[&str] = &["orders", "sessions", "carts", "inventory"];
const BUCKETS: &[&str] = &["prod-assets", "prod-logs", "data-lake-raw", "backups-eu"];
const DBS: &[&str] = &["orders-db", "auth-db", "reporting-db"];
const ASGS: &[&str] = &["web-asg", "worker-asg", "batch-asg"];
const USER_AGENTS: &[&str] = &[
    "aws-cli/2.15.30 Python/3.11.8 Linux/6.1.79-99.164.amzn2023.x86_64 exe/x86_64.amzn.2023 prompt/off command/ec2.describe-instances",
    "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#6.1.79 md/arch#x86_64 lang/python#3.12.2 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.69",
    "APN/1.0 HashiCorp/1.0 Terraform/1.7.5 (+https://www.terraform.io) terraform-provider-aws/5.42.0 (+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.26.0 os/linux lang/go#1.22.1 md/GOOS#linux md/GOARCH#amd64 api/ec2#1.151.1",
    "console.amazonaws.com",
    "aws-sdk-java/2.25.16 Linux/5.10.213-201.855.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/17.0.10+7-LTS Java/17.0.10 vendor/Amazon.com_Inc. io/sync http/Apache cfg/retry-mode/adaptive",
    "ecs.amazonaws.com",
    "autoscaling.amazonaws.com",
];
const ERRORS: &[(&str, &str)] = &[
    ("AccessDenied", "User is not authorized to perform this operation because no identity-based policy allows the action"),
    ("Client.UnauthorizedOperation", "You are not authorized to perform this operation."),
    ("ThrottlingException", "Rate exceeded"),
    ("ValidationException", "1 validation error detected: Value at 'desiredCount' failed to satisfy constraint"),
    ("ResourceNotFoundException", "The requested resource was not found"),
];

/// Read-only operations (about 70% of the mix) and mutating ones.
const READS: &[Op] = &[
    Op::DescribeInstances,
    Op::DescribeSecurityGroups,
    Op::DescribeTargetHealth,
    Op::DescribeServices,
    Op::GetFunction,
    Op::AssumeRole,
    Op::GetObject,
    Op::DescribeDBInstances,
    Op::DescribeAutoScalingGroups,
    Op::DescribeAlarms,
    Op::Decrypt,
    Op::DescribeTable,
    Op::ListTasks,
    Op::GetRole,
];
const WRITES: &[Op] = &[
    Op::AuthorizeSecurityGroupIngress,
    Op::RevokeSecurityGroupIngress,
    Op::RunInstances,
    Op::TerminateInstances,
    Op::RegisterTargets,
    Op::DeregisterTargets,
    Op::ModifyListener,
    Op::UpdateService,
    Op::UpdateFunctionConfiguration,
    Op::AttachRolePolicy,
    Op::DetachRolePolicy,
    Op::ModifyDBInstance,
    Op::UpdateAutoScalingGroup,
    Op::PutMetricAlarm,
    Op::PutObject,
    Op::UpdateTable,
];

#[derive(Debug, Clone, Copy)]
enum Op {
    DescribeInstances,
    DescribeSecurityGroups,
    DescribeTargetHealth,
    DescribeServices,
    GetFunction,
    AssumeRole,
    GetObject,
    DescribeDBInstances,
    DescribeAutoScalingGroups,
    DescribeAlarms,
    Decrypt,
    DescribeTable,
    ListTasks,
    GetRole,
    AuthorizeSecurityGroupIngress,
    RevokeSecurityGroupIngress,
    RunInstances,
    TerminateInstances,
    RegisterTargets,
    DeregisterTargets,
    ModifyListener,
    UpdateService,
    UpdateFunctionConfiguration,
    AttachRolePolicy,
    DetachRolePolicy,
    ModifyDBInstance,
    UpdateAutoScalingGroup,
    PutMetricAlarm,
    PutObject,
    UpdateTable,
}

impl Op {
    fn source_and_name(self) -> (&'static str, &'static str) {
        use Op::*;
        match self {
            DescribeInstances => ("ec2", "DescribeInstances"),
            DescribeSecurityGroups => ("ec2", "DescribeSecurityGroups"),
            DescribeTargetHealth => ("elasticloadbalancing", "DescribeTargetHealth"),
            DescribeServices => ("ecs", "DescribeServices"),
            GetFunction => ("lambda", "GetFunction20150331v2"),
            AssumeRole => ("sts", "AssumeRole"),
            GetObject => ("s3", "GetObject"),
            DescribeDBInstances => ("rds", "DescribeDBInstances"),
            DescribeAutoScalingGroups => ("autoscaling", "DescribeAutoScalingGroups"),
            DescribeAlarms => ("monitoring", "DescribeAlarms"),
            Decrypt => ("kms", "Decrypt"),
            DescribeTable => ("dynamodb", "DescribeTable"),
            ListTasks => ("ecs", "ListTasks"),
            GetRole => ("iam", "GetRole"),
            AuthorizeSecurityGroupIngress => ("ec2", "AuthorizeSecurityGroupIngress"),
            RevokeSecurityGroupIngress => ("ec2", "RevokeSecurityGroupIngress"),
            RunInstances => ("ec2", "RunInstances"),
            TerminateInstances => ("ec2", "TerminateInstances"),
            RegisterTargets => ("elasticloadbalancing", "RegisterTargets"),
            DeregisterTargets => ("elasticloadbalancing", "DeregisterTargets"),
            ModifyListener => ("elasticloadbalancing", "ModifyListener"),
            UpdateService => ("ecs", "UpdateService"),
            UpdateFunctionConfiguration => ("lambda", "UpdateFunctionConfiguration20150331v2"),
            AttachRolePolicy => ("iam", "AttachRolePolicy"),
            DetachRolePolicy => ("iam", "DetachRolePolicy"),
            ModifyDBInstance => ("rds", "ModifyDBInstance"),
            UpdateAutoScalingGroup => ("autoscaling", "UpdateAutoScalingGroup"),
            PutMetricAlarm => ("monitoring", "PutMetricAlarm"),
            PutObject => ("s3", "PutObject"),
            UpdateTable => ("dynamodb", "UpdateTable"),
        }
    }
}

/// How many security groups and instances the simulated account has (the other
/// resources come from fixed lists of names: services, functions, roles, tables...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FleetSize {
    /// Security groups (`sg-` ids).
    pub security_groups: usize,
    /// EC2 instances (`i-` ids).
    pub instances: usize,
}

impl Default for FleetSize {
    /// 60 security groups and 800 instances (the fleet of `bench ingest`).
    fn default() -> FleetSize {
        FleetSize {
            security_groups: 60,
            instances: 800,
        }
    }
}

/// The simulated fleet: ids that recur across records, as in a real account.
struct Fleet {
    sgs: Vec<String>,
    instances: Vec<String>,
    lb_hashes: Vec<String>,
    tg_hashes: Vec<String>,
}

impl Fleet {
    fn new(rng: &mut Rng, size: FleetSize) -> Fleet {
        let ids = |rng: &mut Rng, prefix: &str, n: usize, digits: usize| -> Vec<String> {
            (0..n)
                .map(|_| {
                    let mut s = prefix.to_string();
                    hex(rng, &mut s, digits);
                    s
                })
                .collect()
        };
        Fleet {
            sgs: ids(rng, "sg-", size.security_groups.max(1), 16),
            instances: ids(rng, "i-", size.instances.max(1), 16),
            lb_hashes: ids(rng, "", SERVICES.len(), 16),
            tg_hashes: ids(rng, "", SERVICES.len(), 16),
        }
    }
}

/// Produces CloudTrail records (alone, or as recording lines), deterministically from a
/// seed.
pub struct Generator {
    rng: Rng,
    fleet: Fleet,
    /// Bytes of policy document added to every record (0: none).
    pub pad: usize,
    /// Share of read-only calls, per mille (default 700).
    pub read_per_mille: u64,
    /// Share of failing calls (with `errorCode`), per mille (default 60).
    pub error_per_mille: u64,
}

impl Generator {
    /// A generator over the default fleet ([`FleetSize::default`]).
    pub fn new(seed: u64) -> Generator {
        Generator::with_fleet(seed, FleetSize::default())
    }

    /// A generator over a fleet of `size`.
    pub fn with_fleet(seed: u64, size: FleetSize) -> Generator {
        let mut rng = Rng::new(seed ^ 0x005E_ED0F_2007_1AB5);
        let fleet = Fleet::new(&mut rng, size);
        Generator {
            rng,
            fleet,
            pad: 0,
            read_per_mille: 700,
            error_per_mille: 60,
        }
    }

    /// The generator's PRNG, for callers that draw their own choices (times, other
    /// record kinds) from the same seeded stream.
    pub fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }

    /// The fleet's security group ids (`sg-...`), as records name them.
    pub fn security_groups(&self) -> &[String] {
        &self.fleet.sgs
    }

    /// Appends record `i` of the generated month as one recording line (no newline) to
    /// `out`: about 35 records per second from [`BASE_MS`], slightly out of order,
    /// recorded 4 to 15 minutes after their event time.
    pub fn line(&mut self, i: u64, out: &mut String) {
        let rng = &mut self.rng;
        let event_ms = BASE_MS + (i as i64) * 28 + rng.below(2_000) as i64;
        let recorded_ms = event_ms + 240_000 + rng.below(660_000) as i64;
        self.line_at(event_ms, recorded_ms, out);
    }

    /// Appends one recording line (no newline) to `out`: a record of `event_ms`,
    /// recorded at `recorded_ms`.
    pub fn line_at(&mut self, event_ms: i64, recorded_ms: i64, out: &mut String) {
        let _ = write!(
            out,
            "{{\"source\":\"cloudtrail\",\"recorded_at\":\"{}\",\"payload\":",
            cloudtrail_time(recorded_ms)
        );
        self.record(event_ms, out);
        out.push('}');
    }

    /// Appends one CloudTrail record (a JSON object, as in a CloudTrail log file's
    /// `Records`) of `event_ms` to `out`.
    pub fn record(&mut self, event_ms: i64, out: &mut String) {
        let rng = &mut self.rng;
        let read_only = rng.chance(self.read_per_mille);
        let op = if read_only {
            *rng.pick(READS)
        } else {
            *rng.pick(WRITES)
        };
        let (svc, name) = op.source_and_name();
        let region = *rng.pick(REGIONS);
        let error = if rng.chance(self.error_per_mille) {
            Some(*rng.pick(ERRORS))
        } else {
            None
        };

        out.push_str("{\"eventVersion\":\"1.09\",");
        self.user_identity(out);
        let rng = &mut self.rng;
        let _ = write!(
            out,
            ",\"eventTime\":\"{}\",\"eventSource\":\"{svc}.amazonaws.com\",\"eventName\":\"{name}\",\"awsRegion\":\"{region}\",\"sourceIPAddress\":\"{}.{}.{}.{}\",\"userAgent\":\"{}\"",
            cloudtrail_time(event_ms),
            rng.below(223) + 1,
            rng.below(256),
            rng.below(256),
            rng.below(254) + 1,
            rng.pick(USER_AGENTS)
        );
        if let Some((code, msg)) = error {
            let _ = write!(out, ",\"errorCode\":\"{code}\",\"errorMessage\":\"{msg}\"");
        }
        out.push_str(",\"requestParameters\":");
        self.request(op, region, out);
        out.push_str(",\"responseElements\":");
        if error.is_some() || read_only {
            out.push_str("null");
        } else {
            self.response(op, out);
        }
        let rng = &mut self.rng;
        if self.pad > 0 {
            // A large policy document, as PutBucketPolicy or CreatePolicy carry.
            out.push_str(",\"additionalEventData\":{\"policyDocument\":\"");
            const WORDS: [&str; 4] = [
                "s3:GetObject ",
                "Allow ",
                "arn:aws:s3:::bucket/* ",
                "Principal ",
            ];
            let start = out.len();
            // Cycled, not drawn: the padding leaves the record's other fields as they are.
            for w in WORDS.iter().cycle() {
                if out.len() - start >= self.pad {
                    break;
                }
                out.push_str(w);
            }
            out.truncate(start + self.pad);
            out.push_str("\"}");
        }
        out.push_str(",\"requestID\":\"");
        uuid(rng, out);
        out.push_str("\",\"eventID\":\"");
        uuid(rng, out);
        let _ = write!(
            out,
            "\",\"readOnly\":{read_only},\"eventType\":\"AwsApiCall\",\"managementEvent\":{},\"recipientAccountId\":\"{ACCOUNT}\",\"eventCategory\":\"{}\",\"tlsDetails\":{{\"tlsVersion\":\"TLSv1.3\",\"cipherSuite\":\"TLS_AES_128_GCM_SHA256\",\"clientProvidedHostHeader\":\"{svc}.{region}.amazonaws.com\"}}}}",
            !matches!(op, Op::GetObject | Op::PutObject),
            if matches!(op, Op::GetObject | Op::PutObject) { "Data" } else { "Management" },
        );
    }

    fn user_identity(&mut self, out: &mut String) {
        let rng = &mut self.rng;
        let mut principal = String::from("AROA");
        hex(rng, &mut principal, 16);
        let principal = principal.to_ascii_uppercase();
        let mut key = String::from("ASIA");
        hex(rng, &mut key, 16);
        let key = key.to_ascii_uppercase();
        match rng.below(10) {
            0..=5 => {
                let role = rng.pick(ROLES);
                let session = rng.pick(USERS);
                let _ = write!(
                    out,
                    "\"userIdentity\":{{\"type\":\"AssumedRole\",\"principalId\":\"{principal}:{session}\",\"arn\":\"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{session}\",\"accountId\":\"{ACCOUNT}\",\"accessKeyId\":\"{key}\",\"sessionContext\":{{\"sessionIssuer\":{{\"type\":\"Role\",\"principalId\":\"{principal}\",\"arn\":\"arn:aws:iam::{ACCOUNT}:role/{role}\",\"accountId\":\"{ACCOUNT}\",\"userName\":\"{role}\"}},\"attributes\":{{\"creationDate\":\"2025-10-01T00:00:00Z\",\"mfaAuthenticated\":\"false\"}}}}}}"
                );
            }
            6..=7 => {
                let user = rng.pick(USERS);
                let _ = write!(
                    out,
                    "\"userIdentity\":{{\"type\":\"IAMUser\",\"principalId\":\"{principal}\",\"arn\":\"arn:aws:iam::{ACCOUNT}:user/{user}\",\"accountId\":\"{ACCOUNT}\",\"accessKeyId\":\"{key}\",\"userName\":\"{user}\"}}"
                );
            }
            8 => {
                let svc = rng.pick(&[
                    "ecs.amazonaws.com",
                    "autoscaling.amazonaws.com",
                    "elasticloadbalancing.amazonaws.com",
                ]);
                let _ = write!(
                    out,
                    "\"userIdentity\":{{\"type\":\"AWSService\",\"invokedBy\":\"{svc}\"}}"
                );
            }
            _ => {
                let _ = write!(
                    out,
                    "\"userIdentity\":{{\"type\":\"Root\",\"principalId\":\"{ACCOUNT}\",\"arn\":\"arn:aws:iam::{ACCOUNT}:root\",\"accountId\":\"{ACCOUNT}\",\"accessKeyId\":\"{key}\"}}"
                );
            }
        }
    }

    fn lb(&mut self) -> (usize, &'static str) {
        let i = self.rng.below(SERVICES.len() as u64) as usize;
        (i, SERVICES[i])
    }

    fn request(&mut self, op: Op, region: &str, out: &mut String) {
        use Op::*;
        let f = &self.fleet;
        let rng = &mut self.rng;
        match op {
            DescribeInstances => {
                out.push_str("{\"instancesSet\":{\"items\":[");
                for k in 0..(1 + rng.below(3)) {
                    if k > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "{{\"instanceId\":\"{}\"}}", rng.pick(&f.instances));
                }
                out.push_str("]},\"filterSet\":{}}");
            }
            DescribeSecurityGroups => {
                let _ = write!(
                    out,
                    "{{\"securityGroupSet\":{{}},\"securityGroupIdSet\":{{\"items\":[{{\"groupId\":\"{}\"}}]}},\"filterSet\":{{}}}}",
                    rng.pick(&f.sgs)
                );
            }
            DescribeTargetHealth | RegisterTargets | DeregisterTargets => {
                let (i, name) = self.lb();
                let f = &self.fleet;
                let rng = &mut self.rng;
                let _ = write!(
                    out,
                    "{{\"targetGroupArn\":\"arn:aws:elasticloadbalancing:{region}:{ACCOUNT}:targetgroup/{name}-tg/{}\"",
                    f.tg_hashes[i]
                );
                if !matches!(op, DescribeTargetHealth) {
                    out.push_str(",\"targets\":[");
                    for k in 0..(1 + rng.below(3)) {
                        if k > 0 {
                            out.push(',');
                        }
                        let _ = write!(
                            out,
                            "{{\"id\":\"{}\",\"port\":8080}}",
                            rng.pick(&f.instances)
                        );
                    }
                    out.push(']');
                }
                out.push('}');
            }
            DescribeServices => {
                let _ = write!(
                    out,
                    "{{\"cluster\":\"{}\",\"services\":[\"{}\"],\"include\":[\"TAGS\"]}}",
                    rng.pick(CLUSTERS),
                    rng.pick(SERVICES)
                );
            }
            ListTasks => {
                let _ = write!(
                    out,
                    "{{\"cluster\":\"{}\",\"serviceName\":\"{}\",\"desiredStatus\":\"RUNNING\"}}",
                    rng.pick(CLUSTERS),
                    rng.pick(SERVICES)
                );
            }
            GetFunction => {
                let _ = write!(out, "{{\"functionName\":\"{}\"}}", rng.pick(FUNCTIONS));
            }
            AssumeRole => {
                let _ = write!(
                    out,
                    "{{\"roleArn\":\"arn:aws:iam::{ACCOUNT}:role/{}\",\"roleSessionName\":\"{}\",\"durationSeconds\":3600}}",
                    rng.pick(ROLES),
                    rng.pick(USERS)
                );
            }
            GetObject | PutObject => {
                let _ = write!(
                    out,
                    "{{\"bucketName\":\"{}\",\"Host\":\"s3.{region}.amazonaws.com\",\"key\":\"data/2025/10/part-{:05}.parquet\"}}",
                    rng.pick(BUCKETS),
                    rng.below(100_000)
                );
            }
            DescribeDBInstances => {
                let _ = write!(out, "{{\"dBInstanceIdentifier\":\"{}\"}}", rng.pick(DBS));
            }
            ModifyDBInstance => {
                let _ = write!(
                    out,
                    "{{\"dBInstanceIdentifier\":\"{}\",\"dBInstanceClass\":\"db.r6g.{}\",\"applyImmediately\":true,\"allocatedStorage\":{}}}",
                    rng.pick(DBS),
                    rng.pick(&["large", "xlarge", "2xlarge"]),
                    100 + rng.below(900)
                );
            }
            DescribeAutoScalingGroups => {
                let _ = write!(
                    out,
                    "{{\"autoScalingGroupNames\":[\"{}\"]}}",
                    rng.pick(ASGS)
                );
            }
            UpdateAutoScalingGroup => {
                let _ = write!(
                    out,
                    "{{\"autoScalingGroupName\":\"{}\",\"minSize\":{},\"maxSize\":{},\"desiredCapacity\":{}}}",
                    rng.pick(ASGS),
                    rng.below(3),
                    10 + rng.below(10),
                    2 + rng.below(8)
                );
            }
            DescribeAlarms => {
                let _ = write!(
                    out,
                    "{{\"alarmNames\":[\"{}-5xx\",\"{}-latency-p99\"],\"maxRecords\":100}}",
                    rng.pick(SERVICES),
                    rng.pick(SERVICES)
                );
            }
            PutMetricAlarm => {
                let (i, name) = self.lb();
                let f = &self.fleet;
                let rng = &mut self.rng;
                let _ = write!(
                    out,
                    "{{\"alarmName\":\"{name}-5xx\",\"metricName\":\"HTTPCode_Target_5XX_Count\",\"namespace\":\"AWS/ApplicationELB\",\"statistic\":\"Sum\",\"period\":60,\"evaluationPeriods\":{},\"threshold\":{}.0,\"comparisonOperator\":\"GreaterThanThreshold\",\"dimensions\":[{{\"name\":\"LoadBalancer\",\"value\":\"app/{name}/{}\"}}],\"alarmActions\":[\"arn:aws:sns:{region}:{ACCOUNT}:oncall\"]}}",
                    1 + rng.below(5),
                    5 + rng.below(50),
                    f.lb_hashes[i]
                );
            }
            Decrypt => {
                let mut key = String::new();
                uuid(rng, &mut key);
                let _ = write!(
                    out,
                    "{{\"keyId\":\"arn:aws:kms:{region}:{ACCOUNT}:key/{key}\",\"encryptionAlgorithm\":\"SYMMETRIC_DEFAULT\",\"encryptionContext\":{{\"aws:lambda:FunctionArn\":\"arn:aws:lambda:{region}:{ACCOUNT}:function:{}\"}}}}",
                    rng.pick(FUNCTIONS)
                );
            }
            DescribeTable => {
                let _ = write!(out, "{{\"tableName\":\"{}\"}}", rng.pick(TABLES));
            }
            UpdateTable => {
                let _ = write!(
                    out,
                    "{{\"tableName\":\"{}\",\"billingMode\":\"PROVISIONED\",\"provisionedThroughput\":{{\"readCapacityUnits\":{},\"writeCapacityUnits\":{}}}}}",
                    rng.pick(TABLES),
                    5 * (1 + rng.below(100)),
                    5 * (1 + rng.below(100))
                );
            }
            GetRole => {
                let _ = write!(out, "{{\"roleName\":\"{}\"}}", rng.pick(ROLES));
            }
            AttachRolePolicy | DetachRolePolicy => {
                let _ = write!(
                    out,
                    "{{\"roleName\":\"{}\",\"policyArn\":\"arn:aws:iam::aws:policy/{}\"}}",
                    rng.pick(ROLES),
                    rng.pick(&[
                        "AmazonS3ReadOnlyAccess",
                        "AmazonDynamoDBFullAccess",
                        "CloudWatchAgentServerPolicy",
                        "SecretsManagerReadWrite"
                    ])
                );
            }
            AuthorizeSecurityGroupIngress | RevokeSecurityGroupIngress => {
                let port = *rng.pick(&[22u16, 80, 443, 5432, 6379, 8080]);
                let _ = write!(
                    out,
                    "{{\"groupId\":\"{}\",\"ipPermissions\":{{\"items\":[{{\"ipProtocol\":\"tcp\",\"fromPort\":{port},\"toPort\":{port},\"groups\":{{\"items\":[{{\"groupId\":\"{}\"}}]}},\"ipRanges\":{{\"items\":[{{\"cidrIp\":\"{}\"}}]}},\"ipv6Ranges\":{{}},\"prefixListIds\":{{}}}}]}}}}",
                    rng.pick(&f.sgs),
                    rng.pick(&f.sgs),
                    rng.pick(&["0.0.0.0/0", "10.0.0.0/8", "172.16.0.0/12"])
                );
            }
            RunInstances => {
                let _ = write!(
                    out,
                    "{{\"instancesSet\":{{\"items\":[{{\"imageId\":\"ami-0{:016x}\",\"minCount\":1,\"maxCount\":1}}]}},\"instanceType\":\"{}\",\"groupSet\":{{\"items\":[{{\"groupId\":\"{}\"}}]}},\"subnetId\":\"subnet-0{:016x}\",\"monitoring\":{{\"enabled\":false}},\"disableApiTermination\":false}}",
                    rng.below(1 << 40),
                    rng.pick(&["m6i.large", "c7g.xlarge", "t3.medium"]),
                    rng.pick(&f.sgs),
                    rng.below(1 << 40)
                );
            }
            TerminateInstances => {
                let _ = write!(
                    out,
                    "{{\"instancesSet\":{{\"items\":[{{\"instanceId\":\"{}\"}}]}}}}",
                    rng.pick(&f.instances)
                );
            }
            ModifyListener => {
                let (i, name) = self.lb();
                let f = &self.fleet;
                let rng = &mut self.rng;
                let _ = write!(
                    out,
                    "{{\"listenerArn\":\"arn:aws:elasticloadbalancing:{region}:{ACCOUNT}:listener/app/{name}/{}/{:016x}\",\"port\":443,\"protocol\":\"HTTPS\",\"defaultActions\":[{{\"type\":\"forward\",\"targetGroupArn\":\"arn:aws:elasticloadbalancing:{region}:{ACCOUNT}:targetgroup/{name}-tg/{}\"}}]}}",
                    f.lb_hashes[i],
                    rng.next_u64(),
                    f.tg_hashes[i]
                );
            }
            UpdateService => {
                let svc = rng.pick(SERVICES);
                let _ = write!(
                    out,
                    "{{\"cluster\":\"{}\",\"service\":\"{svc}\",\"desiredCount\":{},\"taskDefinition\":\"arn:aws:ecs:{region}:{ACCOUNT}:task-definition/{svc}:{}\",\"forceNewDeployment\":false}}",
                    rng.pick(CLUSTERS),
                    1 + rng.below(12),
                    1 + rng.below(400)
                );
            }
            UpdateFunctionConfiguration => {
                let _ = write!(
                    out,
                    "{{\"functionName\":\"arn:aws:lambda:{region}:{ACCOUNT}:function:{}\",\"memorySize\":{},\"timeout\":{},\"environment\":{{}}}}",
                    rng.pick(FUNCTIONS),
                    128 * (1 + rng.below(16)),
                    3 + rng.below(60)
                );
            }
        }
    }

    fn response(&mut self, op: Op, out: &mut String) {
        use Op::*;
        let rng = &mut self.rng;
        match op {
            RunInstances => {
                let _ = write!(
                    out,
                    "{{\"requestId\":\"{:016x}\",\"reservationId\":\"r-0{:016x}\",\"ownerId\":\"{ACCOUNT}\",\"instancesSet\":{{\"items\":[{{\"instanceId\":\"i-0{:016x}\",\"instanceState\":{{\"code\":0,\"name\":\"pending\"}},\"privateIpAddress\":\"10.0.{}.{}\"}}]}}}}",
                    rng.next_u64(),
                    rng.below(1 << 60),
                    rng.below(1 << 60),
                    rng.below(256),
                    rng.below(256)
                );
            }
            UpdateService => {
                let _ = write!(
                    out,
                    "{{\"service\":{{\"status\":\"ACTIVE\",\"desiredCount\":{},\"runningCount\":{},\"launchType\":\"FARGATE\",\"deployments\":[{{\"id\":\"ecs-svc/{:019}\",\"status\":\"PRIMARY\",\"rolloutState\":\"IN_PROGRESS\"}}]}}}}",
                    1 + rng.below(12),
                    rng.below(12),
                    rng.below(10_000_000_000_000_000_000)
                );
            }
            _ => {
                out.push_str("{\"requestId\":\"");
                uuid(rng, out);
                out.push_str("\",\"_return\":true}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest;
    use crate::model::Kind;

    #[test]
    fn padded_records_carry_the_padding_and_still_normalize() {
        let (mut plain, mut padded) = (String::new(), String::new());
        Generator::new(3).line(0, &mut plain);
        let mut g = Generator::new(3);
        g.pad = 300_000;
        g.line(0, &mut padded);
        assert_eq!(
            padded.len(),
            plain.len() + 300_000 + r#","additionalEventData":{"policyDocument":""}"#.len()
        );
        let a = ingest::recording_line(plain.as_bytes()).expect("plain line normalizes");
        let b = ingest::recording_line(padded.as_bytes()).expect("padded line normalizes");
        assert_eq!(a.natural_id, b.natural_id);
        assert_eq!(
            b.payload.len(),
            a.payload.len() + padded.len() - plain.len()
        );
    }

    #[test]
    fn generated_records_are_valid_realistic_and_deterministic() {
        let mut g = Generator::new(7);
        let mut ids = std::collections::HashSet::new();
        let (mut ro, mut errors, mut bytes, mut with_sg, mut with_instance, mut with_arn) =
            (0, 0, 0usize, 0, 0, 0);
        let n = 5_000;
        let mut names = std::collections::HashSet::new();
        for i in 0..n {
            let mut line = String::new();
            g.line(i, &mut line);
            bytes += line.len();
            let ev = ingest::recording_line(line.as_bytes()).expect("generated line normalizes");
            assert_eq!(ev.kind, Kind::Change);
            assert!(ids.insert(ev.natural_id.clone()), "duplicate id");
            names.insert(ev.name.clone());
            ro += ev.read_only as u32;
            errors += ev.error_code.is_some() as u32;
            with_sg += ev.resources.iter().any(|r| r.starts_with("sg/sg-")) as u32;
            with_instance += ev.resources.iter().any(|r| r.starts_with("instance/i-")) as u32;
            with_arn += line.contains("\"arn:aws:") as u32;
            assert!(ev.actor.is_some());
        }
        let avg = bytes / n as usize;
        assert!((1000..=2000).contains(&avg), "average line {avg} bytes");
        let ro_share = ro as f64 / n as f64;
        assert!(
            (0.66..0.74).contains(&ro_share),
            "read-only share {ro_share}"
        );
        assert!(
            errors > n as u32 / 40 && errors < n as u32 / 8,
            "errors {errors}"
        );
        assert!(with_sg > 100 && with_instance > 100 && with_arn > n as u32 / 2);
        assert!(names.len() >= 25, "{} event names", names.len());

        let (mut a, mut b) = (String::new(), String::new());
        Generator::new(7).line(0, &mut a);
        Generator::new(7).line(0, &mut b);
        assert_eq!(a, b);
        let mut c = String::new();
        Generator::new(8).line(0, &mut c);
        assert_ne!(a, c);
    }

    /// `n` recording lines from a generator seeded with `seed`.
    fn lines(seed: u64, n: u64) -> Vec<String> {
        let mut g = Generator::new(seed);
        (0..n)
            .map(|i| {
                let mut line = String::new();
                g.line(i, &mut line);
                line
            })
            .collect()
    }

    #[test]
    fn one_seed_one_stream_of_valid_lines_about_70_percent_read_only() {
        let n = 10_000;
        let a = lines(42, n);
        assert_eq!(a, lines(42, n), "the same seed gives the same lines");
        let b = lines(43, n);
        assert!(
            a.iter().zip(&b).all(|(x, y)| x != y),
            "a different seed gives different lines"
        );
        let mut read_only = 0u32;
        for line in &a {
            let ev = match ingest::recording_line(line.as_bytes()) {
                Ok(ev) => ev,
                Err((kind, reason)) => panic!("{kind}: {reason}\n{line}"),
            };
            read_only += ev.read_only as u32;
        }
        let share = f64::from(read_only) / n as f64;
        assert!((0.65..=0.75).contains(&share), "read-only share {share}");
    }

    #[test]
    fn records_follow_the_mix_settings_and_normalize_alone() {
        let mut g = Generator::with_fleet(
            9,
            FleetSize {
                security_groups: 4000,
                instances: 4000,
            },
        );
        assert_eq!(g.security_groups().len(), 4000);
        assert!(g.security_groups().iter().all(|s| s.len() == 19));
        g.read_per_mille = 0;
        g.error_per_mille = 0;
        let mut raw = String::new();
        for k in 0..500 {
            raw.clear();
            let t = BASE_MS + k * 1000;
            g.record(t, &mut raw);
            let ev = crate::normalize::normalize(crate::model::Source::CloudTrail, &raw, None)
                .expect("a record alone normalizes");
            assert!(!ev.read_only && ev.error_code.is_none(), "{raw}");
            assert_eq!(ev.event_time, t);
        }
        raw.clear();
        g.line_at(BASE_MS, BASE_MS + 300_000, &mut raw);
        let ev = ingest::recording_line(raw.as_bytes()).expect("line_at normalizes");
        assert_eq!(ev.received_at, Some(BASE_MS + 300_000));
    }

    #[test]
    fn helpers() {
        let mut rng = Rng::new(0);
        let mut s = String::new();
        hex(&mut rng, &mut s, 32);
        assert_eq!(s.len(), 32);
        assert!(s.bytes().all(|b| b.is_ascii_hexdigit()));
        s.clear();
        uuid(&mut rng, &mut s);
        let parts: Vec<usize> = s.split('-').map(str::len).collect();
        assert_eq!(parts, [8, 4, 4, 4, 12], "{s}");
        assert_eq!(cloudtrail_time(BASE_MS + 1_999), "2025-10-01T00:00:01Z");
        assert_ne!(Rng::new(0).next_u64(), Rng::new(1).next_u64());
    }
}
