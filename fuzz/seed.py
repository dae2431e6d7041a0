#!/usr/bin/env python3
"""Builds the seed corpora of the fuzz targets (fuzz/corpus/TARGET/) from the project's
fixtures/ and, when present, ../shared/data/real: recording lines grouped by source for
the normalizers, small recordings, CloudTrail log files, push bodies and resource keys.
Deterministic; files are named by the SHA-1 of their content."""
import gzip, hashlib, json, os, re, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCES = [os.path.join(ROOT, "fixtures"), os.path.normpath(os.path.join(ROOT, "..", "shared", "data", "real"))]
OUT = os.path.join(ROOT, "fuzz", "corpus")
MAX_FILE = 64 * 1024
MAX_PER_TARGET = 400
NORMALIZERS = {
    "cloudtrail": "normalize_cloudtrail",
    "cloudwatch.alarm_history": "normalize_alarm_history",
    "cloudwatch.alarm": "normalize_alarm_definition",
    "eventbridge": "normalize_eventbridge",
    "github.deployment_status": "normalize_github_deployment_status",
    "logs": "normalize_logs",
    "logs.anomaly": "normalize_logs_anomaly",
    "config": "normalize_config",
    "rootline": "normalize_rootline",
}
corpus = {}

def add(target, data):
    if isinstance(data, str):
        data = data.encode()
    if not data or len(data) > MAX_FILE:
        return
    seen = corpus.setdefault(target, {})
    if len(seen) < MAX_PER_TARGET:
        seen[hashlib.sha1(data).hexdigest()] = data

def read(path):
    with open(path, "rb") as f:
        data = f.read(8 << 20)
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)[: 8 << 20]
        except Exception:
            return None
    return data

ARN = re.compile(r"arn:aws[a-z-]*:[a-z0-9-]*:[a-z0-9-]*:[0-9]*:[^\"\s,]{1,200}")
IDS = re.compile(r"\b(?:sg|i|vpc|subnet|eni|vol|lt|ami)-[0-9a-f]{8,17}\b")

for base in SOURCES:
    if not os.path.isdir(base):
        continue
    for dirpath, _, files in sorted(os.walk(base)):
        for name in sorted(files):
            path = os.path.join(dirpath, name)
            if not re.search(r"\.(jsonl|ndjson|json)(\.gz)?$", name):
                continue
            data = read(path)
            if data is None:
                continue
            text = data.decode("utf-8", "replace")
            for m in ARN.findall(text)[:50] + IDS.findall(text)[:20]:
                add("resource_key", m)
            if re.search(r"\.(jsonl|ndjson)(\.gz)?$", name):
                lines = data.split(b"\n")
                for i in range(0, min(len(lines), 800), 40):
                    add("recording_reader", b"\n".join(lines[i:i + 40]))
                for line in lines[:2000]:
                    try:
                        env = json.loads(line)
                    except Exception:
                        continue
                    if not isinstance(env, dict):
                        continue
                    target = NORMALIZERS.get(env.get("source"))
                    payload = env.get("payload")
                    if target and payload is not None:
                        raw = json.dumps(payload, separators=(",", ":"))
                        add(target, raw)
                        if env.get("source") in ("eventbridge", "github.deployment_status"):
                            add("push_bodies", raw)
                continue
            # A .json file: a CloudTrail log, a single event or webhook, an API answer.
            try:
                doc = json.loads(text)
            except Exception:
                continue
            if isinstance(doc, dict) and isinstance(doc.get("Records"), list) or isinstance(doc, list):
                add("cloudtrail_log_reader", data)
                for rec in (doc.get("Records") if isinstance(doc, dict) else doc)[:50]:
                    add("normalize_cloudtrail", json.dumps(rec, separators=(",", ":")))
            if isinstance(doc, dict):
                if "detail-type" in doc:
                    add("push_bodies", data)
                    add("normalize_eventbridge", data)
                if "deployment_status" in doc:
                    add("push_bodies", data)
                    add("normalize_github_deployment_status", data)
                for key in ("MetricAlarms", "CompositeAlarms"):
                    if isinstance(doc.get(key), list):
                        for a in doc[key][:50]:
                            add("normalize_alarm_definition", json.dumps(a, separators=(",", ":")))
                if "configurationItemCaptureTime" in doc:
                    add("normalize_config", data)

# rootline's own events are written by rootline, never found in fixtures.
for ev in [
    {"id": "incident/inc-1/opened", "time": "2025-10-07T14:00:00Z", "type": "incident_opened", "resources": ["alb/web"]},
    {"id": "feedback/inc-1/1759845600000-000000", "time": "2025-10-07T14:00:00.000Z", "type": "hypothesis_feedback", "by": "ana"},
]:
    add("normalize_rootline", json.dumps(ev, separators=(",", ":")))

for target in sorted(set(NORMALIZERS.values()) | {"recording_reader", "cloudtrail_log_reader", "push_bodies", "resource_key"}):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    for h, data in sorted(corpus.get(target, {}).items()):
        with open(os.path.join(d, h), "wb") as f:
            f.write(data)
    print(f"{target}: {len(corpus.get(target, {}))} seeds", file=sys.stderr)
