
£


service.name
svc-0Á

scope-01ˆ*ò
ï{"version":1,"chain_id":"cp-east","seq":0,"actor":"agent-hello","action":"hello-world.say_hello","resource":"demo/0","decision":"allow","reason":"allowed by policy","timestamp":"2026-10-01T08:00:00.000Z","previous_hash":"0000000000000000000000000000000000000000000000000000000000000000","signer":{"algorithm":"ECDSA_SHA_256","key_id":"test-only-a"},"context":{"identity":"spiffe://example.org/agent/hello","policy_id":"default","policy_version":"sha256:3f1c","request_id":"req-cp-east-0"},"current_hash":"ae9910d8c457ba5581cbe4a710cb8d5ba2c4dfbde8101de35c74a2adddef26b4","kms_signature":{"algorithm":"ECDSA_SHA_256","key_id":"test-only-a","signature":"MEQCICsueQr12VJlH0FRfa9UiMINfnrkiePVudPn3ejUV0bQAiBGO6CjyDNY2ai4DrZUpHM20hwhaBd+RS3gi6LVKTrsuw=="}}bzt.audit.decision&https://opentelemetry.io/schemas/1.0.0Á

scope-11ˆ*ò
ï{"version":1,"chain_id":"cp-west","seq":0,"actor":"agent-hello","action":"hello-world.say_hello","resource":"demo/0","decision":"allow","reason":"allowed by policy","timestamp":"2026-10-01T08:00:00.000Z","previous_hash":"0000000000000000000000000000000000000000000000000000000000000000","signer":{"algorithm":"ECDSA_SHA_256","key_id":"test-only-a"},"context":{"identity":"spiffe://example.org/agent/hello","policy_id":"default","policy_version":"sha256:3f1c","request_id":"req-cp-west-0"},"current_hash":"62a165df74c1214f86dd43f5ace79ca9faf3c9ebacfeda84517d514dd8f78231","kms_signature":{"algorithm":"ECDSA_SHA_256","key_id":"test-only-a","signature":"MEUCIQCVWilK31xBNybhx+buOcyjOXXvrarkDoUvR5KsfGtxCAIgMUbbdZ6ugDuNJgU9Xp6QQecacIOrvcPyGhxhNzUIXLA="}}bzt.audit.decision&https://opentelemetry.io/schemas/1.0.0
¹


service.name
svc-1Á

scope-01ˆ*ò
ï{"version":1,"chain_id":"cp-west","seq":0,"actor":"agent-hello","action":"hello-world.say_hello","resource":"demo/0","decision":"allow","reason":"allowed by policy","timestamp":"2026-10-01T08:00:00.000Z","previous_hash":"0000000000000000000000000000000000000000000000000000000000000000","signer":{"algorithm":"ECDSA_SHA_256","key_id":"test-only-a"},"context":{"identity":"spiffe://example.org/agent/hello","policy_id":"default","policy_version":"sha256:3f1c","request_id":"req-cp-west-0"},"current_hash":"62a165df74c1214f86dd43f5ace79ca9faf3c9ebacfeda84517d514dd8f78231","kms_signature":{"algorithm":"ECDSA_SHA_256","key_id":"test-only-a","signature":"MEUCIQCVWilK31xBNybhx+buOcyjOXXvrarkDoUvR5KsfGtxCAIgMUbbdZ6ugDuNJgU9Xp6QQecacIOrvcPyGhxhNzUIXLA="}}bzt.audit.decision&https://opentelemetry.io/schemas/1.0.0×

scope-11ž*ˆ
…{"version":1,"chain_id":"cp-east","seq":1,"actor":"agent-hello","action":"aws.ec2.terminate_instances","resource":"demo/1","decision":"deny","reason":"dangerous action denied by default","timestamp":"2026-10-01T08:01:00.000Z","previous_hash":"ae9910d8c457ba5581cbe4a710cb8d5ba2c4dfbde8101de35c74a2adddef26b4","signer":{"algorithm":"ECDSA_SHA_256","key_id":"test-only-a"},"context":{"identity":"spiffe://example.org/agent/hello","policy_id":"default","policy_version":"sha256:3f1c","request_id":"req-cp-east-1"},"current_hash":"1cd0fe19709dd83d8e065e73f8d2dd25954178de6176e84b07aeff008f102d7f","kms_signature":{"algorithm":"ECDSA_SHA_256","key_id":"test-only-a","signature":"MEQCIGuweVQxP+bdz1k/B/3AZ/6C6eS4uBVScPgp0B2JgIXtAiAM6ahdiM4e1EIBCCRJVi6Qv9oKmvlXdi89CeVpDxlg/g=="}}bzt.audit.decision&https://opentelemetry.io/schemas/1.0.0
Ï


service.name
svc-2×

scope-01ž*ˆ
…{"version":1,"chain_id":"cp-east","seq":1,"actor":"agent-hello","action":"aws.ec2.terminate_instances","resource":"demo/1","decision":"deny","reason":"dangerous action denied by default","timestamp":"2026-10-01T08:01:00.000Z","previous_hash":"ae9910d8c457ba5581cbe4a710cb8d5ba2c4dfbde8101de35c74a2adddef26b4","signer":{"algorithm":"ECDSA_SHA_256","key_id":"test-only-a"},"context":{"identity":"spiffe://example.org/agent/hello","policy_id":"default","policy_version":"sha256:3f1c","request_id":"req-cp-east-1"},"current_hash":"1cd0fe19709dd83d8e065e73f8d2dd25954178de6176e84b07aeff008f102d7f","kms_signature":{"algorithm":"ECDSA_SHA_256","key_id":"test-only-a","signature":"MEQCIGuweVQxP+bdz1k/B/3AZ/6C6eS4uBVScPgp0B2JgIXtAiAM6ahdiM4e1EIBCCRJVi6Qv9oKmvlXdi89CeVpDxlg/g=="}}bzt.audit.decision&https://opentelemetry.io/schemas/1.0.0×

scope-11ž*ˆ
…{"version":1,"chain_id":"cp-west","seq":1,"actor":"agent-hello","action":"aws.ec2.terminate_instances","resource":"demo/1","decision":"deny","reason":"dangerous action denied by default","timestamp":"2026-10-01T08:01:00.000Z","previous_hash":"62a165df74c1214f86dd43f5ace79ca9faf3c9ebacfeda84517d514dd8f78231","signer":{"algorithm":"ECDSA_SHA_256","key_id":"test-only-a"},"context":{"identity":"spiffe://example.org/agent/hello","policy_id":"default","policy_version":"sha256:3f1c","request_id":"req-cp-west-1"},"current_hash":"f57a0f293bee7c34a76a8838c40fc0fdb926af8ebe86c7890a12720b1c7f9c5b","kms_signature":{"algorithm":"ECDSA_SHA_256","key_id":"test-only-a","signature":"MEYCIQDo24Wuhs3emxMIoyzsW+oqqpyySIp0uJOrmsdJdJxgDAIhAMclOjPNt93xWhMEHf5JF5sPoDMxv1nOBjLaogS0FqHQ"}}bzt.audit.decision&https://opentelemetry.io/schemas/1.0.0