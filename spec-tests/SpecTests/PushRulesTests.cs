using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>
/// Spec: "Push rules": every user starts with the server-default rules, which clients load at start-up; user rules are
/// created, ordered, changed and deleted; default rules can be disabled and given other actions; changes reach /sync.
/// </summary>
public abstract class PushRulesTests(ServerFixture fixture)
{
    private MatrixClient C => fixture.Client;

    [Fact]
    public async Task New_users_have_the_server_default_rules()
    {
        Assert.Equal(401, (await C.GetAsync("/_matrix/client/v3/pushrules/")).Status);
        var user = await C.RegisterAsync();
        var rules = (await C.GetAsync("/_matrix/client/v3/pushrules/", user.AccessToken)).Body!["global"]!;
        var overrides = rules["override"]!.AsArray();
        Assert.Equal(".m.rule.master", overrides[0]!["rule_id"]!.GetValue<string>());
        Assert.False(overrides[0]!["enabled"]!.GetValue<bool>());
        var invite = overrides.Single(r => r!["rule_id"]!.GetValue<string>() == ".m.rule.invite_for_me")!;
        Assert.Contains(invite["conditions"]!.AsArray(), c => c!["pattern"]?.GetValue<string>() == user.UserId);
        Assert.Contains(rules["underride"]!.AsArray(), r => r!["rule_id"]!.GetValue<string>() == ".m.rule.message");
        Assert.Equal(rules.ToJsonString(), (await C.GetAsync("/_matrix/client/v3/pushrules/global/", user.AccessToken)).Body!.ToJsonString());

        var sync = await C.GetAsync("/_matrix/client/v3/sync", user.AccessToken);
        var pushRules = sync.Body!["account_data"]!["events"]!.AsArray().Single(e => e!["type"]!.GetValue<string>() == "m.push_rules")!;
        Assert.Equal(rules.ToJsonString(), pushRules["content"]!["global"]!.ToJsonString());
    }

    private static string[] Ids(System.Text.Json.Nodes.JsonNode rules, string kind) =>
        rules[kind]!.AsArray().Select(r => r!["rule_id"]!.GetValue<string>()).ToArray();

    [Fact]
    public async Task User_rules_are_created_ordered_changed_and_deleted()
    {
        var user = await C.RegisterAsync();
        const string p = "/_matrix/client/v3/pushrules/global";
        Assert.Equal(200, (await C.PutAsync($"{p}/content/cake", new { pattern = "cake*lie", actions = new[] { "notify" } }, user.AccessToken)).Status);
        Assert.Equal(200, (await C.PutAsync($"{p}/override/first", new { conditions = new[] { new { kind = "event_match", key = "content.body", pattern = "x" } }, actions = new object[] { "notify" } }, user.AccessToken)).Status);
        Assert.Equal(200, (await C.PutAsync($"{p}/override/second", new { conditions = Array.Empty<object>(), actions = Array.Empty<object>() }, user.AccessToken)).Status);
        Assert.Equal(200, (await C.PutAsync($"{p}/override/third?after=first", new { actions = new object[] { new { set_tweak = "highlight" } } }, user.AccessToken)).Status);
        Assert.Equal(200, (await C.PutAsync($"{p}/override/zeroth?before=second", new { conditions = Array.Empty<object>(), actions = new[] { "notify" } }, user.AccessToken)).Status);
        Assert.Equal(200, (await C.PutAsync($"{p}/room/!room:{C.ServerName}", new { actions = Array.Empty<object>() }, user.AccessToken)).Status);

        var rules = (await C.GetAsync($"{p}/", user.AccessToken)).Body!;
        // The master rule first, then the user's rules (a new one goes first), then the other defaults.
        var overrides = Ids(rules, "override");
        Assert.Equal([".m.rule.master", "zeroth", "second", "first", "third", ".m.rule.suppress_notices"], overrides[..6]);
        var cake = (await C.GetAsync($"{p}/content/cake", user.AccessToken)).Body!;
        Assert.Equal("cake*lie", cake["pattern"]!.GetValue<string>());
        Assert.True(cake["enabled"]!.GetValue<bool>());
        Assert.False(cake["default"]!.GetValue<bool>());
        Assert.Equal([$"!room:{C.ServerName}"], Ids(rules, "room"));

        Assert.Equal(200, (await C.PutAsync($"{p}/content/cake/enabled", new { enabled = false }, user.AccessToken)).Status);
        Assert.False((await C.GetAsync($"{p}/content/cake/enabled", user.AccessToken)).Body!["enabled"]!.GetValue<bool>());
        Assert.Equal(200, (await C.PutAsync($"{p}/content/cake/actions", new { actions = new[] { "dont_notify" } }, user.AccessToken)).Status);
        Assert.Equal("dont_notify", (await C.GetAsync($"{p}/content/cake/actions", user.AccessToken)).Body!["actions"]![0]!.GetValue<string>());
        // Replacing a rule keeps its place and its enabled state.
        Assert.Equal(200, (await C.PutAsync($"{p}/content/cake", new { pattern = "pie", actions = new[] { "notify" } }, user.AccessToken)).Status);
        Assert.False((await C.GetAsync($"{p}/content/cake/enabled", user.AccessToken)).Body!["enabled"]!.GetValue<bool>());

        Assert.Equal(200, (await C.DeleteAsync($"{p}/override/second", null, user.AccessToken)).Status);
        Assert.DoesNotContain("second", Ids((await C.GetAsync($"{p}/", user.AccessToken)).Body!, "override"));
        Assert.Equal("M_NOT_FOUND", (await C.GetAsync($"{p}/override/second", user.AccessToken)).Errcode);
        Assert.Equal("M_NOT_FOUND", (await C.DeleteAsync($"{p}/override/second", null, user.AccessToken)).Errcode);

        // Another user's rules are their own.
        var other = await C.RegisterAsync();
        Assert.Equal(404, (await C.GetAsync($"{p}/content/cake", other.AccessToken)).Status);
    }

    [Fact]
    public async Task Server_default_rules_can_be_disabled_and_given_other_actions_and_changes_reach_sync()
    {
        var user = await C.RegisterAsync();
        const string p = "/_matrix/client/v3/pushrules/global";
        var initial = await C.GetAsync("/_matrix/client/v3/sync", user.AccessToken);
        var since = initial.Str("next_batch");

        Assert.Equal(200, (await C.PutAsync($"{p}/override/.m.rule.master/enabled", new { enabled = true }, user.AccessToken)).Status);
        Assert.Equal(200, (await C.PutAsync($"{p}/underride/.m.rule.message/actions", new { actions = new object[] { "notify", new { set_tweak = "sound", value = "ding" } } }, user.AccessToken)).Status);
        Assert.True((await C.GetAsync($"{p}/override/.m.rule.master", user.AccessToken)).Body!["enabled"]!.GetValue<bool>());
        var message = (await C.GetAsync($"{p}/underride/.m.rule.message", user.AccessToken)).Body!;
        Assert.Equal("ding", message["actions"]![1]!["value"]!.GetValue<string>());
        Assert.True(message["default"]!.GetValue<bool>());
        Assert.Equal("event_match", message["conditions"]![0]!["kind"]!.GetValue<string>());

        var next = await C.GetAsync($"/_matrix/client/v3/sync?since={since}&timeout=0", user.AccessToken);
        var pushed = next.Body!["account_data"]!["events"]!.AsArray().Single(e => e!["type"]!.GetValue<string>() == "m.push_rules")!;
        Assert.True(pushed["content"]!["global"]!["override"]![0]!["enabled"]!.GetValue<bool>());
        Assert.Equal(400, (await C.DeleteAsync($"{p}/override/.m.rule.master", null, user.AccessToken)).Status);
    }

    [Fact]
    public async Task Invalid_rules_are_refused_with_the_spec_codes()
    {
        var user = await C.RegisterAsync();
        const string p = "/_matrix/client/v3/pushrules/global";
        Assert.Equal("M_INVALID_PARAM", (await C.PutAsync($"{p}/override/.mine", new { actions = Array.Empty<object>() }, user.AccessToken)).Errcode);
        Assert.Equal("M_INVALID_PARAM", (await C.PutAsync($"{p}/nonsense/x", new { actions = Array.Empty<object>() }, user.AccessToken)).Errcode);
        Assert.Equal("M_UNRECOGNIZED", (await C.PutAsync("/_matrix/client/v3/pushrules/device/override/x", new { actions = Array.Empty<object>() }, user.AccessToken)).Errcode);
        Assert.Equal("M_MISSING_PARAM", (await C.PutAsync($"{p}/override/x", new { conditions = Array.Empty<object>() }, user.AccessToken)).Errcode);
        Assert.Equal("M_INVALID_PARAM", (await C.PutAsync($"{p}/override/x", new { actions = new[] { "explode" } }, user.AccessToken)).Errcode);
        Assert.Equal("M_INVALID_PARAM", (await C.PutAsync($"{p}/content/x", new { actions = new[] { "notify" } }, user.AccessToken)).Errcode);
        Assert.Equal("M_INVALID_PARAM", (await C.PutAsync($"{p}/override/x", new { conditions = new[] { new { kind = "event_match", key = "type" } }, actions = new[] { "notify" } }, user.AccessToken)).Errcode);
        Assert.Equal("M_INVALID_PARAM", (await C.PutAsync($"{p}/override/x", new { conditions = new[] { new { kind = "room_member_count", @is = "lots" } }, actions = new[] { "notify" } }, user.AccessToken)).Errcode);
        var badAnchor = await C.PutAsync($"{p}/override/x?before=nope", new { actions = new[] { "notify" } }, user.AccessToken);
        Assert.Equal(400, badAnchor.Status);
        Assert.Equal("M_UNKNOWN", badAnchor.Errcode);
        Assert.Equal(400, (await C.PutAsync($"{p}/override/x?after=.m.rule.master", new { actions = new[] { "notify" } }, user.AccessToken)).Status);
        Assert.Equal("M_BAD_JSON", (await C.PutAsync($"{p}/underride/.m.rule.message/enabled", new { enabled = "yes" }, user.AccessToken)).Errcode);
        Assert.Equal("M_NOT_FOUND", (await C.PutAsync($"{p}/override/missing/enabled", new { enabled = true }, user.AccessToken)).Errcode);
        Assert.Equal("M_NOT_FOUND", (await C.PutAsync($"{p}/override/missing/actions", new { actions = new[] { "notify" } }, user.AccessToken)).Errcode);
        Assert.Equal(401, (await C.GetAsync($"{p}/override/.m.rule.master")).Status);
        // Nothing refused was stored.
        Assert.DoesNotContain("x", Ids((await C.GetAsync($"{p}/", user.AccessToken)).Body!, "override"));
    }
    [Fact]
    public async Task The_rules_of_one_kind_are_served_with_a_trailing_slash()
    {
        var user = await C.RegisterAsync();
        const string p = "/_matrix/client/v3/pushrules/global";
        var roomRule = Uri.EscapeDataString("#spam:example.com");
        Assert.Equal(200, (await C.PutAsync($"{p}/room/{roomRule}", new { actions = new[] { "notify" } }, user.AccessToken)).Status);

        var all = (await C.GetAsync($"{p}/", user.AccessToken)).Body!;
        foreach (var kind in new[] { "override", "content", "room", "sender", "underride" })
        {
            var list = await C.GetAsync($"{p}/{kind}/", user.AccessToken);
            Assert.Equal(200, list.Status);
            Assert.Equal(all[kind]!.ToJsonString(), list.Body!.ToJsonString());
        }
        Assert.Equal(["#spam:example.com"], Ids(all, "room"));
        var rule = (await C.GetAsync($"{p}/room/{roomRule}", user.AccessToken)).Body!;
        Assert.Equal("#spam:example.com", rule["rule_id"]!.GetValue<string>());
    }

    [Fact]
    public async Task Malformed_rule_paths_are_refused_as_synapse_refuses_them()
    {
        var user = await C.RegisterAsync();
        const string root = "/_matrix/client/v3/pushrules";
        const string p = root + "/global";
        var notify = new { actions = new[] { "notify" } };

        Assert.Equal(404, (await C.GetAsync(root, user.AccessToken)).Status);
        foreach (var path in new[] { p, $"{p}/room", $"{root}/not_a_scope/", $"{p}/override/.m.rule.master/not_an_attr" })
            AssertRefused(400, "M_UNRECOGNIZED", await C.GetAsync(path, user.AccessToken));
        AssertRefused(400, "M_INVALID_PARAM", await C.GetAsync($"{p}/not_a_kind/", user.AccessToken));
        AssertRefused(404, "M_NOT_FOUND", await C.GetAsync($"{p}/override/not_a_rule_id", user.AccessToken));
        Assert.True((await C.GetAsync($"{p}/override/.m.rule.master/default", user.AccessToken)).Body!["default"]!.GetValue<bool>());

        foreach (var path in new[] { $"{root}/", p, $"{p}/room", $"{p}/room/", $"{root}/not_a_scope/room/x" })
            AssertRefused(400, "M_UNRECOGNIZED", await C.PutAsync(path, notify, user.AccessToken));
        AssertRefused(400, "M_INVALID_PARAM", await C.PutAsync($"{p}/not_a_kind/x", notify, user.AccessToken));
        AssertRefused(400, "M_INVALID_PARAM", await C.PutAsync($"{p}/room/a%2Fb", notify, user.AccessToken));
        AssertRefused(400, "M_INVALID_PARAM", await C.PutAsync($"{p}/room/{Uri.EscapeDataString("#fo\\o:example.com")}", notify, user.AccessToken));
        AssertRefused(400, "M_UNRECOGNIZED", await C.PutAsync($"{p}/override/.m.rule.master/not_an_attr", new { enabled = true }, user.AccessToken));
        AssertRefused(400, "M_UNRECOGNIZED", await C.DeleteAsync($"{p}/room/", null, user.AccessToken));
        AssertRefused(404, "M_NOT_FOUND", await C.DeleteAsync($"{p}/room/not_a_rule_id", null, user.AccessToken));
        Assert.Empty(Ids((await C.GetAsync($"{p}/", user.AccessToken)).Body!, "room"));
    }

    private static void AssertRefused(int status, string errcode, MatrixResponse response)
    {
        Assert.True(response.Status == status && response.Errcode == errcode, $"expected {status} {errcode}, got {response}");
        Assert.NotNull(response.Body!["error"]);
    }
}

public sealed class PushRulesTestsSqlite(SqliteServer f) : PushRulesTests(f), IClassFixture<SqliteServer>;
public sealed class PushRulesTestsPostgres(PostgresServer f) : PushRulesTests(f), IClassFixture<PostgresServer>;
