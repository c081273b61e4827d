# Berth with the module's defaults: a public function URL, a generated bucket name, the table
# "berth". Build the functions first, from the repository root:
#
#   cargo lambda build --release --arm64 --output-format zip
#
# then, in this directory: terraform init && terraform apply

terraform {
  required_version = ">= 1.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
  }
}

provider "aws" {
  region = "eu-west-1"
}

module "berth" {
  source = "../.."

  name           = "berth"
  lambda_zip_dir = "${path.root}/../../../target/lambda"

  # Keep the event log when someone runs terraform destroy by mistake (the default).
  deletion_protection = true

  tags = {
    app = "berth"
  }
}

output "registry_host" {
  value = module.berth.registry_host
}

output "registry_url" {
  value = module.berth.registry_url
}
