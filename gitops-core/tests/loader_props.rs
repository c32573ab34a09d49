//! Property tests: no input makes the loader or the validator panic.

use gitops_core::{Memory, Repository};
use proptest::prelude::*;

const KEYS: &[&str] = &[
    "version",
    "id",
    "environments",
    "path",
    "file",
    "shared",
    "ignore",
    "stack",
    "name",
    "template",
    "capabilities",
    "pipeline",
    "stack-name",
    "defaults",
    "region",
    "parameters",
    "tags",
    "promotion",
    "order",
    "keys",
    "template-file-path",
    "account",
    "protected",
    "Resources",
    "Parameters",
    "Type",
    "Default",
    "AllowedValues",
    "AllowedPattern",
    "x",
];

fn yaml_value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("1".to_string()),
        Just("true".to_string()),
        Just("null".to_string()),
        Just("\"1.2.3\"".to_string()),
        Just("!Ref X".to_string()),
        Just("'[unclosed'".to_string()),
        Just("common/app.yaml".to_string()),
        Just("../../etc/passwd".to_string()),
        Just("\"{environment}-app\"".to_string()),
        Just("\"*[\"".to_string()),
        "[a-z0-9 .*/{}-]{0,12}".prop_map(|s| format!("{s:?}")),
    ];
    leaf.prop_recursive(4, 40, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(", "))),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..5).prop_map(|v| {
                let body: Vec<String> = v.iter().map(|(k, v)| format!("{k}: {v}")).collect();
                format!("{{{}}}", body.join(", "))
            }),
        ]
    })
}

fn check(source: &Memory) {
    if let Ok(repo) = Repository::load(source) {
        let _ = repo.validate(source);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(cfg in prop::collection::vec(any::<u8>(), 0..400),
                                env in prop::collection::vec(any::<u8>(), 0..400),
                                tpl in prop::collection::vec(any::<u8>(), 0..400)) {
        let source = Memory::new("fuzz")
            .with_file("gitops.yaml", cfg)
            .with_file("environments/a/environment.yaml", env)
            .with_file("common/app.yaml", tpl);
        check(&source);
        let source = Memory::new("fuzz")
            .with_file("gitops.yaml", "version: 1\nstack: {template: common/app.yaml}\n")
            .with_file("environments/a/environment.yaml", b"\xff\xfe".to_vec());
        check(&source);
    }

    #[test]
    fn random_yaml_never_panics(cfg in yaml_value(), env in yaml_value(), tpl in yaml_value()) {
        let with_version = format!("version: 1\n{}", cfg.trim_start_matches('{').trim_end_matches('}').replace(", ", "\n"));
        for config in [cfg.clone(), with_version] {
            let source = Memory::new("fuzz")
                .with_file("gitops.yaml", config)
                .with_file("environments/a/environment.yaml", env.clone())
                .with_file("environments/b/environment.yaml", "parameters: {A: 1}\n")
                .with_file("common/app.yaml", tpl.clone());
            check(&source);
        }
    }
}
