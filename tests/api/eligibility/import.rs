//! `POST /v1/members/import`: a CSV roster with good and bad rows keeps the good ones and
//! reports each bad one by its line (header = line 1).

use serde_json::json;

use super::{assert_ineligible, int, lab, policy, row, Net};

const ROSTER: &str = "\
member_id,policy_id,relationship,dob,gender,pincode,name,phone,enrolled_on,family_id
imp-1,imp-pol,self,1980-02-03,female,560001,\"Rao, Priya\",+919800000101,2029-01-01,imp-fam
imp-bad-date,imp-pol,self,1980-13-45,male,560001,Bad Date,+919800000102,2029-01-01,
imp-2,imp-pol,spouse,1982-04-05,male,560001,Kiran Rao,+919800000103,2029-01-01,imp-fam
imp-3,imp-pol,child,2015-06-07,female,560001,Anu Rao,,2029-01-01,
imp-ghost,no-such-policy,self,1990-01-01,male,560001,Ghost,+919800000104,2029-01-01,
";

#[tokio::test]
async fn three_good_rows_are_kept_and_two_bad_lines_reported() {
    let net = Net::build().await;
    let mut floater = policy(json!([lab(json!({"annual_count": 1}))]));
    floater["floater"] = json!(true);
    net.policy("imp-pol", &floater).await;

    let upload = || {
        net.app.post_raw(
            "/v1/members/import",
            Some(&net.key),
            "text/csv",
            ROSTER.as_bytes().to_vec(),
        )
    };
    let res = upload().await.ok(200);
    assert_eq!(int(&res["imported"]), 3, "{res}");
    let rejected = res["rejected"]
        .as_array()
        .unwrap_or_else(|| panic!("no rejected list: {res}"));
    let lines: Vec<i64> = rejected.iter().map(|r| int(&r["line"])).collect();
    assert_eq!(lines, vec![3, 6], "rejected lines: {res}");
    for r in rejected {
        assert!(
            r["code"].as_str().is_some_and(|c| !c.is_empty())
                && r["message"].as_str().is_some_and(|m| !m.is_empty()),
            "a rejection without code or message: {r}"
        );
    }
    assert_eq!(rejected[1]["code"], "unknown_policy", "{res}");

    let want = [
        ("imp-1", "self", "1980-02-03", "Rao, Priya", "imp-fam"),
        ("imp-2", "spouse", "1982-04-05", "Kiran Rao", "imp-fam"),
        ("imp-3", "child", "2015-06-07", "Anu Rao", "imp-3"),
    ];
    for (id, rel, dob, name, family) in want {
        let m = net.app.get_member(&net.key, id).await.ok(200);
        assert_eq!(m["policy_id"], "imp-pol", "{m}");
        assert_eq!(m["relationship"], rel, "{m}");
        assert_eq!(m["dob"], dob, "{m}");
        assert_eq!(m["name"], name, "{m}");
        assert_eq!(m["pincode"], "560001", "{m}");
        assert_eq!(m["enrolled_on"], "2029-01-01", "{m}");
        assert_eq!(m["family_id"], family, "{m}");
        // Another partner cannot see them.
        net.app
            .get_member(&net.other_key, id)
            .await
            .problem(404, "not_found");
    }
    for id in ["imp-bad-date", "imp-ghost"] {
        net.app
            .get_member(&net.key, id)
            .await
            .problem(404, "not_found");
    }

    // The imported members are insured as imported: imp-1 and imp-2 share one floater visit.
    net.book_ok("imp-1", &["CBC"], "imp-1").await;
    assert_ineligible(
        &net.book("imp-2", &["CBC"], "imp-2").await,
        &["count_limit_exhausted"],
    );
    net.book_ok("imp-3", &["CBC"], "imp-3").await;
    let v = net.ents("imp-2").await;
    assert_eq!(v["holder"], "imp-fam", "{v}");
    assert_eq!(row(&v, "category:lab").count_reserved, 1, "{v}");

    // Importing the same roster again is an upsert: same answer, nothing duplicated.
    let again = upload().await.ok(200);
    assert_eq!(again, res, "a second import of the same roster");
    let v = net.ents("imp-1").await;
    assert_eq!(row(&v, "category:lab").count_reserved, 1, "{v}");
}
