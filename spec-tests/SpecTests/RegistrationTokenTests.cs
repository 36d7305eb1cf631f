using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>Spec: "Token-authenticated registration" (m.login.registration_token and its validity endpoint), on a server that requires tokens.</summary>
public abstract class RegistrationTokenTests(string engine) : ServerFixture(engine,
    "registration:\n  enabled: true\n  requires_token: true\n  shared_secret: spec-test-shared-secret-0123456789\n")
{
    [Fact]
    public async Task A_single_use_token_registers_one_account_and_no_more()
    {
        var admin = await RegistrationTests.CreateAdminAsync(Client);
        var created = await Client.PostAsync("/_synapse/admin/v1/registration_tokens/new", new { uses_allowed = 1 }, admin);
        Assert.Equal(200, created.Status);
        var token = created.Str("token");
        Assert.Equal(16, token.Length);

        var validity = await Client.GetAsync($"/_matrix/client/v1/register/m.login.registration_token/validity?token={token}");
        Assert.True(validity.Body!["valid"]!.GetValue<bool>());
        var bogus = await Client.GetAsync("/_matrix/client/v1/register/m.login.registration_token/validity?token=nope");
        Assert.False(bogus.Body!["valid"]!.GetValue<bool>());

        var name = MatrixClient.UniqueName();
        var first = await Client.PostAsync("/_matrix/client/v3/register", new { username = name, password = "pw" });
        Assert.Equal(401, first.Status);
        Assert.Equal("m.login.registration_token", first.Body!["flows"]![0]!["stages"]![0]!.GetValue<string>());

        var dummy = await Client.PostAsync("/_matrix/client/v3/register",
            new { username = name, password = "pw", auth = new { type = "m.login.dummy", session = first.Str("session") } });
        Assert.Equal(401, dummy.Status);

        var wrong = await Client.PostAsync("/_matrix/client/v3/register",
            new { username = name, password = "pw", auth = new { type = "m.login.registration_token", token = "wrong", session = first.Str("session") } });
        Assert.Equal(401, wrong.Status);
        Assert.Equal("M_FORBIDDEN", wrong.Errcode);

        var done = await Client.PostAsync("/_matrix/client/v3/register",
            new { username = name, password = "pw", auth = new { type = "m.login.registration_token", token, session = first.Str("session") } });
        Assert.Equal(200, done.Status);

        var state = await Client.GetAsync($"/_synapse/admin/v1/registration_tokens/{token}", admin);
        Assert.Equal(1, state.Body!["completed"]!.GetValue<long>());
        Assert.Equal(0, state.Body!["pending"]!.GetValue<long>());
        validity = await Client.GetAsync($"/_matrix/client/v1/register/m.login.registration_token/validity?token={token}");
        Assert.False(validity.Body!["valid"]!.GetValue<bool>());

        var second = await Client.PostAsync("/_matrix/client/v3/register", new { username = MatrixClient.UniqueName(), password = "pw" });
        var refused = await Client.PostAsync("/_matrix/client/v3/register", new
        {
            username = MatrixClient.UniqueName(), password = "pw",
            auth = new { type = "m.login.registration_token", token, session = second.Str("session") },
        });
        Assert.Equal(401, refused.Status);
        Assert.Equal("M_FORBIDDEN", refused.Errcode);
    }

    [Fact]
    public async Task Admin_can_list_update_and_delete_tokens()
    {
        var admin = await RegistrationTests.CreateAdminAsync(Client);
        var created = await Client.PostAsync("/_synapse/admin/v1/registration_tokens/new", new { token = "team-2026", uses_allowed = 5 }, admin);
        Assert.Equal("team-2026", created.Str("token"));
        Assert.Equal(400, (await Client.PostAsync("/_synapse/admin/v1/registration_tokens/new", new { token = "team-2026" }, admin)).Status);
        Assert.Equal(400, (await Client.PostAsync("/_synapse/admin/v1/registration_tokens/new", new { token = "bad token!" }, admin)).Status);

        var updated = await Client.PutAsync("/_synapse/admin/v1/registration_tokens/team-2026", new { uses_allowed = 0 }, admin);
        Assert.Equal(0, updated.Body!["uses_allowed"]!.GetValue<long>());
        var list = await Client.GetAsync("/_synapse/admin/v1/registration_tokens?valid=false", admin);
        Assert.Contains(list.Body!["registration_tokens"]!.AsArray(), t => t!["token"]!.GetValue<string>() == "team-2026");

        Assert.Equal(200, (await Client.DeleteAsync("/_synapse/admin/v1/registration_tokens/team-2026", null, admin)).Status);
        Assert.Equal(404, (await Client.GetAsync("/_synapse/admin/v1/registration_tokens/team-2026", admin)).Status);
    }
}

public sealed class RegistrationTokenTestsSqlite() : RegistrationTokenTests("sqlite");
public sealed class RegistrationTokenTestsPostgres() : RegistrationTokenTests("postgres");
