//! Property test of the kubelet pod list parser: recorded-shaped JSON with fields removed,
//! retyped or set to odd values, and arbitrary bytes, give pods or an error, never a panic.
//! `cargo xtask fuzz kube` runs it long.

use eos_kube::parse_pod_list;
use proptest::prelude::*;

/// A pod list as the kubelet writes it, with each field's value drawn from odd choices.
fn pod_list() -> impl Strategy<Value = String> {
    let value = prop_oneof![
        Just("\"x\"".to_string()),
        Just("\"\"".to_string()),
        Just("null".to_string()),
        Just("42".to_string()),
        Just("-1e999".to_string()),
        Just("[]".to_string()),
        Just("{}".to_string()),
        Just("\"containerd://abc\"".to_string()),
        Just("\"docker://\"".to_string()),
        Just("\"\\u0000\\ud800\"".to_string()),
        "[a-z0-9:/._-]{0,20}".prop_map(|s| format!("\"{s}\"")),
    ];
    (
        proptest::collection::vec(value, 12),
        0usize..4,
        any::<bool>(),
    )
        .prop_map(|(v, pods, cut)| {
            let pod = format!(
                r#"{{"metadata":{{"name":{},"namespace":{},"uid":{},"labels":{{"app":{}}},"ownerReferences":[{{"kind":{},"name":{}}}]}},"spec":{{"containers":[{{"name":{},"image":{}}}]}},"status":{{"phase":{},"containerStatuses":[{{"name":{},"containerID":{},"image":{}}}]}}}}"#,
                v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11]
            );
            let items = vec![pod; pods].join(",");
            let doc = format!(r#"{{"kind":"PodList","apiVersion":"v1","items":[{items}]}}"#);
            if cut {
                doc[..doc.len() / 2].to_string()
            } else {
                doc
            }
        })
}

proptest! {
    #![proptest_config(eos_testkit::fuzz::config())]

    #[test]
    fn fuzz_pod_list(doc in pod_list()) {
        let _ = parse_pod_list(doc.as_bytes());
    }

    #[test]
    fn fuzz_pod_list_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
        let _ = parse_pod_list(&bytes);
    }
}
