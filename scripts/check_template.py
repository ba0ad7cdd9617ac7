"""Translates the SAM template to CloudFormation offline and lints the result.

cfn-lint checks the SAM source against resource schemas. Some mistakes exist only after
expansion, such as a misspelled GetAtt or an IAM action that does not exist, and show only in
the translated template. This script expands the
template with aws-sam-translator, as CloudFormation does at deploy time, and runs cfn-lint on
the output.
"""

import json
import os
import subprocess
import sys
import tempfile

import yaml
from samtranslator.parser.parser import Parser
from samtranslator.translator.transform import transform


class CloudFormationLoader(yaml.SafeLoader):
    """A YAML loader that turns short-form intrinsics (!Ref, !GetAtt, !Sub) into their long form."""


def _intrinsic(loader, tag_suffix, node):
    name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


CloudFormationLoader.add_multi_constructor("!", _intrinsic)


class NoManagedPolicies:
    """Managed-policy lookup that needs no AWS account: the template uses none by name."""

    def load(self):
        return {}


def main(path: str) -> int:
    # The translator reads the region for pseudo parameters; no AWS call is made.
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    with open(path, encoding="utf-8") as handle:
        sam_template = yaml.load(handle, Loader=CloudFormationLoader)
    # `sam package` replaces local code paths with S3 locations before deployment; do the same.
    sam_template.get("Globals", {}).get("Function", {}).pop("CodeUri", None)
    for name, resource in sam_template["Resources"].items():
        if resource.get("Type") == "AWS::Serverless::Function":
            resource.setdefault("Properties", {})["CodeUri"] = f"s3://rollcall-artifacts/{name}.zip"
    translated = transform(sam_template, {"AWS::Region": "us-east-1"}, NoManagedPolicies(), Parser())
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as output:
        json.dump(translated, output, indent=2)
    resources = translated.get("Resources", {})
    mappings = [r for r in resources.values() if r.get("Type") == "AWS::Lambda::EventSourceMapping"]
    for mapping in mappings:
        if "ReportBatchItemFailures" not in mapping["Properties"].get("FunctionResponseTypes", []):
            print(f"an event source mapping lacks ReportBatchItemFailures: {mapping}", file=sys.stderr)
            return 1
    print(f"translated {path}: {len(resources)} CloudFormation resources, {len(mappings)} SQS event source mappings")
    cfn_lint = os.path.join(os.path.dirname(sys.executable), "cfn-lint")
    try:
        return subprocess.call([cfn_lint, output.name])
    finally:
        os.unlink(output.name)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "infra/template.yaml"))
