//! Canonical resource keys.
//!
//! Upstream formats name the same resource in many ways: an ARN, a bare id
//! (`sg-0abc12`), a name (`web`), or an alarm's metric dimension
//! (`LoadBalancer=app/web/50dc6c495c0c9188`). Every one of them maps to one key,
//! `<type>/<name>`, so that the resource graph and per-resource queries join on it.
//!
//! Trade-off: keys drop the account and region. Names are unique per account and
//! region, so two accounts with a resource of the same name share a key; in exchange a
//! bare name in a request parameter resolves to the same key as the ARN in a response.

/// Builds a key from a type and a name, or `None` when the name is empty.
pub fn key(kind: &str, name: &str) -> Option<String> {
    let name = name.trim();
    if name.is_empty() || name.len() > 512 {
        return None;
    }
    // The type comes from upstream text too (an ARN's resource type, a Config item's
    // type): a `/`, a control character or a space in it would make the key read back
    // as another type and name (found by fuzzing: fixtures/fuzz/resource_key-1).
    if kind.is_empty()
        || kind.len() > 128
        || kind
            .chars()
            .any(|c| c == '/' || c.is_control() || c.is_whitespace())
    {
        return None;
    }
    Some(format!("{kind}/{name}"))
}

/// Id prefixes of EC2-family resources whose bare ids are globally recognisable.
const ID_PREFIXES: &[(&str, &str)] = &[
    ("sg-", "sg"),
    ("i-", "instance"),
    ("vpc-", "vpc"),
    ("subnet-", "subnet"),
    ("eni-", "eni"),
    ("vol-", "volume"),
    ("snap-", "snapshot"),
    ("ami-", "ami"),
    ("lt-", "launch-template"),
    ("igw-", "igw"),
    ("nat-", "nat"),
    ("rtb-", "route-table"),
    ("acl-", "nacl"),
    ("vpce-", "vpce"),
    ("tgw-", "tgw"),
    ("pcx-", "pcx"),
    ("eipalloc-", "eip"),
];

/// Resolves what a user typed (a canonical key, an ARN or a bare id) to a canonical key;
/// anything else is taken as a key as given.
pub fn from_input(input: &str) -> String {
    from_arn(input)
        .or_else(|| from_id(input))
        .unwrap_or_else(|| input.to_string())
}

/// Key for a bare EC2-style id such as `sg-0abc12` or `i-0123456789abcdef0`.
pub fn from_id(id: &str) -> Option<String> {
    let id = id.trim();
    for (prefix, kind) in ID_PREFIXES {
        if let Some(rest) = id.strip_prefix(prefix) {
            if rest.len() >= 8 && rest.len() <= 17 && rest.bytes().all(|b| b.is_ascii_hexdigit()) {
                return key(kind, id);
            }
        }
    }
    None
}

/// Key for an ARN, or `None` if the string is not an ARN.
pub fn from_arn(arn: &str) -> Option<String> {
    let arn = arn.trim();
    let mut parts = arn.splitn(6, ':');
    if parts.next()? != "arn" {
        return None;
    }
    let _partition = parts.next()?;
    let service = parts.next()?;
    let _region = parts.next()?;
    let _account = parts.next()?;
    let resource = parts.next()?;
    if resource.is_empty() {
        return None;
    }
    let (rtype, rest) = split_resource(resource);
    match service {
        "ec2" => match rtype {
            "security-group" => key("sg", rest),
            "instance" => key("instance", rest),
            "vpc" => key("vpc", rest),
            "subnet" => key("subnet", rest),
            "network-interface" => key("eni", rest),
            "volume" => key("volume", rest),
            "launch-template" => key("launch-template", rest),
            "image" => key("ami", rest),
            // Other EC2 ids carry their type (`acl-`, `rtb-`, `igw-`): the same key as
            // the bare id a CloudTrail call names.
            _ => from_id(rest).or_else(|| key(&format!("ec2-{rtype}"), rest)),
        },
        "elasticloadbalancing" => match rtype {
            // loadbalancer/app/NAME/HASH, loadbalancer/NAME (classic)
            "loadbalancer" => lb_name(rest).and_then(lb_key),
            // listener/app/NAME/LBHASH/LISTENERHASH and listener-rule/...: part of the LB
            "listener" | "listener-rule" => lb_name(rest).and_then(lb_key),
            "targetgroup" => tg_key(first_segment(rest)),
            _ => key(&format!("elb-{rtype}"), rest),
        },
        "lambda" => match rtype {
            // function:NAME[:QUALIFIER]
            "function" => key("lambda", first_segment_colon(rest)),
            "layer" => key("lambda-layer", first_segment_colon(rest)),
            "event-source-mapping" => key("lambda-esm", rest),
            _ => key(&format!("lambda-{rtype}"), rest),
        },
        "iam" => match rtype {
            "role" => key("iam-role", last_segment(rest)),
            "policy" => key("iam-policy", last_segment(rest)),
            "user" => key("iam-user", last_segment(rest)),
            "group" => key("iam-group", last_segment(rest)),
            "instance-profile" => key("instance-profile", last_segment(rest)),
            _ => key(&format!("iam-{rtype}"), rest),
        },
        "sts" => match rtype {
            // assumed-role/ROLE/SESSION: the role is the resource
            "assumed-role" => key("iam-role", first_segment(rest)),
            _ => None,
        },
        "ecs" => match rtype {
            // service/CLUSTER/NAME (new format) or service/NAME (old format)
            "service" => key("ecs-service", last_segment(rest)),
            "cluster" => key("ecs-cluster", rest),
            // task-definition/FAMILY:REVISION
            "task-definition" => key("ecs-taskdef", first_segment_colon(rest)),
            "task" => key("ecs-task", last_segment(rest)),
            "container-instance" => key("ecs-container-instance", last_segment(rest)),
            _ => key(&format!("ecs-{rtype}"), rest),
        },
        "rds" => match rtype {
            "db" => key("rds", rest),
            "cluster" => key("rds-cluster", rest),
            "pg" => key("rds-pg", rest),
            "cluster-pg" => key("rds-cluster-pg", rest),
            _ => key(&format!("rds-{rtype}"), rest),
        },
        "autoscaling" => {
            // autoScalingGroup:UUID:autoScalingGroupName/NAME
            if let Some(idx) = resource.find("autoScalingGroupName/") {
                return key("asg", &resource[idx + "autoScalingGroupName/".len()..]);
            }
            if let Some(idx) = resource.find("launchConfigurationName/") {
                return key(
                    "launch-config",
                    &resource[idx + "launchConfigurationName/".len()..],
                );
            }
            key(&format!("autoscaling-{rtype}"), rest)
        }
        "dynamodb" => match rtype {
            "table" => key("dynamodb", first_segment(rest)),
            _ => key(&format!("dynamodb-{rtype}"), rest),
        },
        "s3" => key("s3", first_segment(resource)),
        "sqs" => key("sqs", resource),
        "sns" => key("sns", first_segment_colon(resource)),
        "logs" => match rtype {
            // log-group:NAME[:*] or log-group:NAME:log-stream:STREAM
            "log-group" => {
                let name = rest.split(":log-stream:").next().unwrap_or(rest);
                key("loggroup", name.strip_suffix(":*").unwrap_or(name))
            }
            _ => key(&format!("logs-{rtype}"), rest),
        },
        "cloudwatch" => match rtype {
            "alarm" => key("alarm", rest),
            _ => key(&format!("cloudwatch-{rtype}"), rest),
        },
        "secretsmanager" => key("secret", rest),
        "kms" => key("kms", rest),
        "codedeploy" => match rtype {
            "deploymentgroup" => key("codedeploy-group", rest),
            "application" => key("codedeploy-app", rest),
            _ => key(&format!("codedeploy-{rtype}"), rest),
        },
        "cloudtrail" => key("trail", last_segment(rest)),
        _ => key(&format!("{service}-{rtype}"), rest),
    }
}

/// Splits `type/rest` or `type:rest`; a resource with neither is all `rest` of type "".
fn split_resource(resource: &str) -> (&str, &str) {
    let slash = resource.find('/');
    let colon = resource.find(':');
    let at = match (slash, colon) {
        (Some(s), Some(c)) => Some(s.min(c)),
        (s, c) => s.or(c),
    };
    match at {
        Some(i) => (&resource[..i], &resource[i + 1..]),
        None => ("", resource),
    }
}

fn first_segment(s: &str) -> &str {
    s.split('/').next().unwrap_or(s)
}

fn first_segment_colon(s: &str) -> &str {
    s.split(':').next().unwrap_or(s)
}

fn last_segment(s: &str) -> &str {
    s.rsplit('/').next().unwrap_or(s)
}

/// The load balancer name in `app/NAME/HASH[/...]`, `net/NAME/HASH` or a bare `NAME`.
fn lb_name(rest: &str) -> Option<&str> {
    let mut it = rest.split('/');
    let first = it.next()?;
    match first {
        "app" | "net" | "gwy" => it.next(),
        _ => Some(first),
    }
}

/// Load balancer key. ELB names are case-insensitive and DNS names carry them in lower
/// case, so the key is lower case.
pub fn lb_key(name: &str) -> Option<String> {
    key("lb", &name.to_ascii_lowercase())
}

/// Target group key (lower case, like load balancers).
pub fn tg_key(name: &str) -> Option<String> {
    key("tg", &name.to_ascii_lowercase())
}

/// Key for a host name (`orders.example.com`), from a URL, a DNS record or a host
/// header; `None` for things that are not host names.
pub fn from_host(host: &str) -> Option<String> {
    let h = host.trim().trim_end_matches('.').to_ascii_lowercase();
    let h = h.split(':').next().unwrap_or(&h).to_string();
    if h.len() < 4
        || !h.contains('.')
        || !h
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'*')
    {
        return None;
    }
    // An ELB DNS name names its load balancer: NAME-ID.REGION.elb.amazonaws.com,
    // optionally prefixed by dualstack. or internal-.
    if h.ends_with(".elb.amazonaws.com") {
        let first = h.split('.').next().unwrap_or("");
        let first = first.strip_prefix("internal-").unwrap_or(first);
        let name = match first.rfind('-') {
            Some(i) if first[i + 1..].bytes().all(|b| b.is_ascii_alphanumeric()) => &first[..i],
            _ => first,
        };
        let name = if h.starts_with("dualstack.") {
            h.split('.')
                .nth(1)
                .map(|l| l.rsplit_once('-').map(|x| x.0).unwrap_or(l))
                .unwrap_or(name)
        } else {
            name
        };
        return lb_key(name);
    }
    key("host", &h)
}

/// Host keys of the http(s) URLs in a text.
pub fn hosts_in_text(text: &str, out: &mut Vec<String>) {
    for scheme in ["https://", "http://"] {
        let mut rest = text;
        while let Some(i) = rest.find(scheme) {
            let after = &rest[i + scheme.len()..];
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == ':'))
                .unwrap_or(after.len());
            out.extend(from_host(&after[..end]));
            rest = &after[end..];
        }
    }
}

/// Key for a CloudWatch metric dimension, or `None` for dimensions that name no resource.
pub fn from_dimension(name: &str, value: &str) -> Option<String> {
    let value = value.trim();
    match name {
        "LoadBalancer" => lb_name(value).and_then(lb_key),
        "LoadBalancerName" => lb_key(value),
        "TargetGroup" => {
            let v = value.strip_prefix("targetgroup/").unwrap_or(value);
            tg_key(first_segment(v))
        }
        "FunctionName" => key("lambda", first_segment_colon(value)),
        "Resource" => key("lambda", first_segment_colon(value)),
        "DBInstanceIdentifier" => key("rds", value),
        "DBClusterIdentifier" => key("rds-cluster", value),
        "AutoScalingGroupName" => key("asg", value),
        "InstanceId" => from_id(value).or_else(|| key("instance", value)),
        "ServiceName" => key("ecs-service", value),
        "ClusterName" => key("ecs-cluster", value),
        "TableName" => key("dynamodb", value),
        "QueueName" => key("sqs", value),
        "TopicName" => key("sns", value),
        "BucketName" => key("s3", value),
        "LogGroupName" => key("loggroup", value),
        "ApiName" => key("apigateway", value),
        "StateMachineArn" => from_arn(value),
        "CacheClusterId" => key("elasticache", value),
        "DomainName" => key("opensearch", value),
        _ => None,
    }
}

/// Key for an AWS Config item's resource (type like `AWS::EC2::SecurityGroup`).
pub fn from_config(
    resource_type: &str,
    resource_id: &str,
    resource_name: Option<&str>,
) -> Option<String> {
    if let Some(k) = from_arn(resource_id).or_else(|| from_id(resource_id)) {
        return Some(k);
    }
    let name = resource_name
        .filter(|n| !n.is_empty())
        .unwrap_or(resource_id);
    match resource_type {
        "AWS::Lambda::Function" => key("lambda", name),
        "AWS::IAM::Role" => key("iam-role", name),
        "AWS::IAM::Policy" => key("iam-policy", name),
        "AWS::IAM::User" => key("iam-user", name),
        "AWS::RDS::DBInstance" => key("rds", name),
        "AWS::RDS::DBCluster" => key("rds-cluster", name),
        "AWS::AutoScaling::AutoScalingGroup" => key("asg", name),
        "AWS::ECS::Service" => key("ecs-service", last_segment(name)),
        "AWS::ECS::Cluster" => key("ecs-cluster", name),
        "AWS::ECS::TaskDefinition" => key("ecs-taskdef", first_segment_colon(name)),
        "AWS::ElasticLoadBalancingV2::LoadBalancer" => lb_key(name),
        "AWS::ElasticLoadBalancing::LoadBalancer" => lb_key(name),
        "AWS::ElasticLoadBalancingV2::TargetGroup" => tg_key(name),
        "AWS::DynamoDB::Table" => key("dynamodb", name),
        "AWS::S3::Bucket" => key("s3", name),
        "AWS::SQS::Queue" => key("sqs", name),
        "AWS::CloudWatch::Alarm" => key("alarm", name),
        _ => {
            let t = resource_type
                .strip_prefix("AWS::")
                .unwrap_or(resource_type)
                .replace("::", "-")
                .to_ascii_lowercase();
            key(&t, name)
        }
    }
}

/// The type part of a key (`sg` for `sg/sg-0abc`).
pub fn key_type(key: &str) -> &str {
    key.split('/').next().unwrap_or(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ec2_arn_keys_like_its_bare_id() {
        for (arn, id) in [
            (
                "arn:aws:ec2:ap-south-1:111122223333:network-acl/acl-0123456789abcdef0",
                "acl-0123456789abcdef0",
            ),
            (
                "arn:aws:ec2:eu-west-1:123456789012:route-table/rtb-0a1b2c3d4e5f60718",
                "rtb-0a1b2c3d4e5f60718",
            ),
        ] {
            assert_eq!(from_arn(arn), from_id(id), "{arn}");
            assert!(from_arn(arn).is_some());
        }
        assert_eq!(
            from_arn("arn:aws:ec2:eu-west-1:123456789012:dedicated-host/h-0a1b2c3d4e5f60718")
                .as_deref(),
            Some("ec2-dedicated-host/h-0a1b2c3d4e5f60718")
        );
    }

    #[test]
    fn one_key_for_arn_id_name_and_dimension() {
        let arn = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/50dc6c495c0c9188";
        assert_eq!(from_arn(arn).as_deref(), Some("lb/web"));
        assert_eq!(
            from_dimension("LoadBalancer", "app/web/50dc6c495c0c9188").as_deref(),
            Some("lb/web")
        );
        let listener = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2";
        assert_eq!(from_arn(listener).as_deref(), Some("lb/web"));
        assert_eq!(
            from_arn("arn:aws:ec2:us-east-1:123456789012:security-group/sg-0abc1234").as_deref(),
            Some("sg/sg-0abc1234")
        );
        assert_eq!(from_id("sg-0abc1234").as_deref(), Some("sg/sg-0abc1234"));
        assert_eq!(from_id("sg-group"), None);
        let tg = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-tg/6d0ecf831eec9f09";
        assert_eq!(from_arn(tg).as_deref(), Some("tg/web-tg"));
        assert_eq!(
            from_host("prod-orders-Alb-6735XARHMWV1-2013567010.us-east-1.elb.amazonaws.com.")
                .as_deref(),
            Some("lb/prod-orders-alb-6735xarhmwv1")
        );
        assert_eq!(
            from_host("Orders.Example.com.").as_deref(),
            Some("host/orders.example.com")
        );
        let mut hs = Vec::new();
        hosts_in_text(
            "Synthetic check for https://gateway-api.example.com/health ok",
            &mut hs,
        );
        assert_eq!(hs, vec!["host/gateway-api.example.com"]);
        assert_eq!(
            from_dimension("TargetGroup", "targetgroup/web-tg/6d0ecf831eec9f09").as_deref(),
            Some("tg/web-tg")
        );
    }

    #[test]
    fn service_specific_arns() {
        assert_eq!(
            from_arn("arn:aws:lambda:us-east-1:1:function:orders:live").as_deref(),
            Some("lambda/orders")
        );
        assert_eq!(
            from_arn("arn:aws:iam::1:role/service-role/orders-role").as_deref(),
            Some("iam-role/orders-role")
        );
        assert_eq!(
            from_arn("arn:aws:ecs:us-east-1:1:service/prod/api").as_deref(),
            Some("ecs-service/api")
        );
        assert_eq!(
            from_arn("arn:aws:ecs:us-east-1:1:task-definition/api:42").as_deref(),
            Some("ecs-taskdef/api")
        );
        assert_eq!(
            from_arn("arn:aws:autoscaling:us-east-1:1:autoScalingGroup:aaff7f9e-b07b:autoScalingGroupName/CartAsg").as_deref(),
            Some("asg/CartAsg")
        );
        assert_eq!(
            from_arn("arn:aws:logs:us-east-1:1:log-group:/prd/cart/app:*").as_deref(),
            Some("loggroup//prd/cart/app")
        );
        assert_eq!(
            from_arn("arn:aws:rds:us-east-1:1:db:orders-db").as_deref(),
            Some("rds/orders-db")
        );
        assert_eq!(from_arn("not an arn"), None);
        assert_eq!(from_arn("arn:aws"), None);
    }
}
