using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>Spec: client-server API, "Profiles", with the custom profile fields of v1.16.</summary>
public abstract class ProfileTests(ServerFixture fixture)
{
    private MatrixClient C => fixture.Client;

    [Fact]
    public async Task New_users_have_their_localpart_as_display_name()
    {
        var user = await C.RegisterAsync();
        var profile = await C.GetAsync($"/_matrix/client/v3/profile/{user.UserId}");
        Assert.Equal(user.Localpart, profile.Str("displayname"));
        var field = await C.GetAsync($"/_matrix/client/v3/profile/{user.UserId}/displayname");
        Assert.Equal(user.Localpart, field.Str("displayname"));
    }

    [Fact]
    public async Task Set_get_and_delete_standard_and_custom_fields()
    {
        var user = await C.RegisterAsync();
        var p = $"/_matrix/client/v3/profile/{user.UserId}";
        Assert.Equal(200, (await C.PutAsync($"{p}/displayname", new { displayname = "Alice Wonderland" }, user.AccessToken)).Status);
        Assert.Equal(200, (await C.PutAsync($"{p}/avatar_url", new { avatar_url = "mxc://spec.test/abc" }, user.AccessToken)).Status);
        Assert.Equal(200, (await C.PutAsync($"{p}/m.tz", "{\"m.tz\": \"Europe/Berlin\"}", user.AccessToken)).Status);
        Assert.Equal(200, (await C.PutAsync($"{p}/org.example.job", "{\"org.example.job\": {\"title\": \"Engineer\", \"level\": 3}}", user.AccessToken)).Status);

        var profile = await C.GetAsync(p);
        Assert.Equal("Alice Wonderland", profile.Str("displayname"));
        Assert.Equal("mxc://spec.test/abc", profile.Str("avatar_url"));
        Assert.Equal("Europe/Berlin", profile.Str("m.tz"));
        Assert.Equal(3, profile.Body!["org.example.job"]!["level"]!.GetValue<int>());

        Assert.Equal(200, (await C.DeleteAsync($"{p}/org.example.job", null, user.AccessToken)).Status);
        Assert.Equal(404, (await C.GetAsync($"{p}/org.example.job")).Status);
        Assert.Equal(200, (await C.DeleteAsync($"{p}/org.example.job", null, user.AccessToken)).Status);
    }

    [Fact]
    public async Task Only_the_owner_may_change_a_profile()
    {
        var alice = await C.RegisterAsync();
        var bob = await C.RegisterAsync();
        var response = await C.PutAsync($"/_matrix/client/v3/profile/{alice.UserId}/displayname", new { displayname = "pwned" }, bob.AccessToken);
        Assert.Equal(403, response.Status);
        Assert.Equal("M_FORBIDDEN", response.Errcode);
        Assert.Equal(403, (await C.DeleteAsync($"/_matrix/client/v3/profile/{alice.UserId}/displayname", null, bob.AccessToken)).Status);
        Assert.Equal(401, (await C.PutAsync($"/_matrix/client/v3/profile/{alice.UserId}/displayname", new { displayname = "anon" })).Status);
        Assert.Equal(alice.Localpart, (await C.GetAsync($"/_matrix/client/v3/profile/{alice.UserId}/displayname")).Str("displayname"));
    }

    [Fact]
    public async Task Invalid_input_is_rejected_with_the_spec_codes()
    {
        var user = await C.RegisterAsync();
        var p = $"/_matrix/client/v3/profile/{user.UserId}";
        Assert.Equal("M_INVALID_PARAM", (await C.PutAsync($"{p}/NotNamespaced", "{\"NotNamespaced\": 1}", user.AccessToken)).Errcode);
        var longKey = "org.example." + new string('k', 260);
        Assert.Equal("M_KEY_TOO_LARGE", (await C.PutAsync($"{p}/{longKey}", $"{{\"{longKey}\": 1}}", user.AccessToken)).Errcode);
        Assert.Equal("M_MISSING_PARAM", (await C.PutAsync($"{p}/displayname", new { avatar_url = "x" }, user.AccessToken)).Errcode);
        Assert.Equal("M_BAD_JSON", (await C.PutAsync($"{p}/displayname", new { displayname = 5 }, user.AccessToken)).Errcode);
        Assert.Equal(400, (await C.PutAsync($"{p}/avatar_url", new { avatar_url = "https://example.com/a.png" }, user.AccessToken)).Status);

        var big = new string('x', 40_000);
        Assert.Equal(200, (await C.PutAsync($"{p}/org.example.a", $"{{\"org.example.a\": \"{big}\"}}", user.AccessToken)).Status);
        var tooBig = await C.PutAsync($"{p}/org.example.b", $"{{\"org.example.b\": \"{big}\"}}", user.AccessToken);
        Assert.Equal(400, tooBig.Status);
        Assert.Equal("M_PROFILE_TOO_LARGE", tooBig.Errcode);
        Assert.Equal(404, (await C.GetAsync($"{p}/org.example.b")).Status);
    }

    [Fact]
    public async Task Unknown_users_and_invalid_ids()
    {
        Assert.Equal("M_NOT_FOUND", (await C.GetAsync($"/_matrix/client/v3/profile/@nobody{Guid.NewGuid():N}:{C.ServerName}")).Errcode);
        Assert.Equal(400, (await C.GetAsync("/_matrix/client/v3/profile/not-a-user-id")).Status);
    }
}

public sealed class ProfileTestsSqlite(SqliteServer f) : ProfileTests(f), IClassFixture<SqliteServer>;
public sealed class ProfileTestsPostgres(PostgresServer f) : ProfileTests(f), IClassFixture<PostgresServer>;
