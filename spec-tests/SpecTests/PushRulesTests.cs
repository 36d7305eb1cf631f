using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>Spec: "Push rules" — every user starts with the server-default rules, which clients load at start-up.</summary>
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
    }
}

public sealed class PushRulesTestsSqlite(SqliteServer f) : PushRulesTests(f), IClassFixture<SqliteServer>;
public sealed class PushRulesTestsPostgres(PostgresServer f) : PushRulesTests(f), IClassFixture<PostgresServer>;
