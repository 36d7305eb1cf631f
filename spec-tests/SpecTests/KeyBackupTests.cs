using System.Text.Json.Nodes;
using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>Spec: "Server-side key backups" — versions, keys at all three levels, etag and count, the replacement rules.</summary>
public abstract class KeyBackupTests(ServerFixture fixture)
{
    private MatrixClient C => fixture.Client;
    private const string V3 = "/_matrix/client/v3";
    private const string Algorithm = "m.megolm_backup.v1.curve25519-aes-sha2";

    private static JsonObject Key(int firstMessageIndex, int forwardedCount, bool verified, string data) => new()
    {
        ["first_message_index"] = firstMessageIndex,
        ["forwarded_count"] = forwardedCount,
        ["is_verified"] = verified,
        ["session_data"] = new JsonObject { ["ciphertext"] = data, ["ephemeral"] = "e", ["mac"] = "m" },
    };

    private async Task<string> CreateVersionAsync(LoggedInUser user, string publicKey = "pk1")
    {
        var created = await C.PostAsync($"{V3}/room_keys/version", new { algorithm = Algorithm, auth_data = new { public_key = publicKey } }, user.AccessToken);
        Assert.True(created.Status == 200, created.ToString());
        return created.Str("version");
    }

    [Fact]
    public async Task Versions_are_created_read_updated_and_deleted()
    {
        var alice = await C.RegisterAsync();
        Assert.Equal("M_NOT_FOUND", (await C.GetAsync($"{V3}/room_keys/version", alice.AccessToken)).Errcode);
        var first = await CreateVersionAsync(alice);
        var second = await CreateVersionAsync(alice, "pk2");
        Assert.NotEqual(first, second);

        var latest = await C.GetAsync($"{V3}/room_keys/version", alice.AccessToken);
        Assert.Equal(second, latest.Str("version"));
        Assert.Equal(Algorithm, latest.Str("algorithm"));
        Assert.Equal("pk2", latest.Body!["auth_data"]!["public_key"]!.GetValue<string>());
        Assert.Equal(0, latest.Body!["count"]!.GetValue<int>());
        Assert.NotNull(latest.Body!["etag"]);
        Assert.Equal("pk1", (await C.GetAsync($"{V3}/room_keys/version/{first}", alice.AccessToken)).Body!["auth_data"]!["public_key"]!.GetValue<string>());

        Assert.Equal(200, (await C.PutAsync($"{V3}/room_keys/version/{second}", new { algorithm = Algorithm, auth_data = new { public_key = "pk2", extra = 1 }, version = second }, alice.AccessToken)).Status);
        Assert.Equal(1, (await C.GetAsync($"{V3}/room_keys/version/{second}", alice.AccessToken)).Body!["auth_data"]!["extra"]!.GetValue<int>());
        Assert.Equal("M_INVALID_PARAM", (await C.PutAsync($"{V3}/room_keys/version/{second}", new { algorithm = Algorithm, auth_data = new { }, version = first }, alice.AccessToken)).Errcode);
        Assert.Equal("M_INVALID_PARAM", (await C.PutAsync($"{V3}/room_keys/version/{second}", new { algorithm = "m.other", auth_data = new { } }, alice.AccessToken)).Errcode);
        Assert.Equal("M_MISSING_PARAM", (await C.PostAsync($"{V3}/room_keys/version", new { algorithm = Algorithm }, alice.AccessToken)).Errcode);
        // An algorithm the server does not know is stored as is (backups are opaque to it), as Synapse does.
        var other = await C.PostAsync($"{V3}/room_keys/version", new { algorithm = "org.example.future", auth_data = new { k = 1 } }, alice.AccessToken);
        Assert.Equal(200, other.Status);
        Assert.Equal("org.example.future", (await C.GetAsync($"{V3}/room_keys/version/{other.Str("version")}", alice.AccessToken)).Str("algorithm"));
        Assert.Equal(200, (await C.DeleteAsync($"{V3}/room_keys/version/{other.Str("version")}", null, alice.AccessToken)).Status);
        Assert.Equal("M_NOT_FOUND", (await C.GetAsync($"{V3}/room_keys/version/9999", alice.AccessToken)).Errcode);
        Assert.Equal("M_NOT_FOUND", (await C.GetAsync($"{V3}/room_keys/version/abc", alice.AccessToken)).Errcode);

        // Another user's backups are invisible.
        var bob = await C.RegisterAsync();
        Assert.Equal("M_NOT_FOUND", (await C.GetAsync($"{V3}/room_keys/version/{second}", bob.AccessToken)).Errcode);

        Assert.Equal(200, (await C.DeleteAsync($"{V3}/room_keys/version/{second}", null, alice.AccessToken)).Status);
        Assert.Equal("M_NOT_FOUND", (await C.GetAsync($"{V3}/room_keys/version/{second}", alice.AccessToken)).Errcode);
        Assert.Equal(first, (await C.GetAsync($"{V3}/room_keys/version", alice.AccessToken)).Str("version"));
        Assert.NotEqual(second, await CreateVersionAsync(alice));
    }

    [Fact]
    public async Task Keys_are_stored_at_every_level_only_in_the_current_version_and_replaced_only_by_better_ones()
    {
        var alice = await C.RegisterAsync();
        var old = await CreateVersionAsync(alice);
        var version = await CreateVersionAsync(alice);
        var room = "!room:example.org";
        var r = Uri.EscapeDataString(room);

        var all = await C.PutAsync($"{V3}/room_keys/keys?version={version}", new JsonObject
        {
            ["rooms"] = new JsonObject { [room] = new JsonObject { ["sessions"] = new JsonObject { ["s1"] = Key(5, 1, false, "a"), ["s2"] = Key(0, 0, true, "b") } } },
        }.ToJsonString(), alice.AccessToken);
        Assert.True(all.Status == 200, all.ToString());
        Assert.Equal(2, all.Body!["count"]!.GetValue<int>());
        var etag = all.Str("etag");

        // Worse keys are ignored (the etag stays); better ones replace.
        var worse = await C.PutAsync($"{V3}/room_keys/keys/{r}/s2?version={version}", Key(0, 0, false, "worse").ToJsonString(), alice.AccessToken);
        Assert.Equal(etag, worse.Str("etag"));
        var better = await C.PutAsync($"{V3}/room_keys/keys/{r}?version={version}",
            new JsonObject { ["sessions"] = new JsonObject { ["s1"] = Key(2, 1, false, "better") } }.ToJsonString(), alice.AccessToken);
        Assert.NotEqual(etag, better.Str("etag"));
        Assert.Equal(2, better.Body!["count"]!.GetValue<int>());

        var s1 = await C.GetAsync($"{V3}/room_keys/keys/{r}/s1?version={version}", alice.AccessToken);
        Assert.Equal("better", s1.Body!["session_data"]!["ciphertext"]!.GetValue<string>());
        Assert.Equal(2, s1.Body!["first_message_index"]!.GetValue<int>());
        Assert.Equal("b", (await C.GetAsync($"{V3}/room_keys/keys/{r}/s2?version={version}", alice.AccessToken)).Body!["session_data"]!["ciphertext"]!.GetValue<string>());
        Assert.Equal(2, (await C.GetAsync($"{V3}/room_keys/keys/{r}?version={version}", alice.AccessToken)).Body!["sessions"]!.AsObject().Count);
        Assert.Equal(2, (await C.GetAsync($"{V3}/room_keys/keys?version={version}", alice.AccessToken)).Body!["rooms"]![room]!["sessions"]!.AsObject().Count);
        Assert.Empty((await C.GetAsync($"{V3}/room_keys/keys/{Uri.EscapeDataString("!other:example.org")}?version={version}", alice.AccessToken)).Body!["sessions"]!.AsObject());
        Assert.Equal("M_NOT_FOUND", (await C.GetAsync($"{V3}/room_keys/keys/{r}/missing?version={version}", alice.AccessToken)).Errcode);
        Assert.Equal(2, (await C.GetAsync($"{V3}/room_keys/version", alice.AccessToken)).Body!["count"]!.GetValue<int>());

        // Only the current version takes keys.
        var wrong = await C.PutAsync($"{V3}/room_keys/keys/{r}/s3?version={old}", Key(0, 0, false, "x").ToJsonString(), alice.AccessToken);
        Assert.Equal(403, wrong.Status);
        Assert.Equal("M_WRONG_ROOM_KEYS_VERSION", wrong.Errcode);
        Assert.Equal(version, wrong.Str("current_version"));
        Assert.Equal("M_NOT_FOUND", (await C.PutAsync($"{V3}/room_keys/keys/{r}/s3?version=9999", Key(0, 0, false, "x").ToJsonString(), alice.AccessToken)).Errcode);
        Assert.Equal("M_MISSING_PARAM", (await C.PutAsync($"{V3}/room_keys/keys/{r}/s3", Key(0, 0, false, "x").ToJsonString(), alice.AccessToken)).Errcode);
        Assert.Equal("M_MISSING_PARAM", (await C.PutAsync($"{V3}/room_keys/keys/{r}/s3?version={version}", new { first_message_index = 0 }, alice.AccessToken)).Errcode);
        Assert.Equal("M_BAD_JSON", (await C.PutAsync($"{V3}/room_keys/keys/{r}/s3?version={version}",
            new { first_message_index = "0", forwarded_count = 0, is_verified = false, session_data = new { } }, alice.AccessToken)).Errcode);

        var deleted = await C.DeleteAsync($"{V3}/room_keys/keys/{r}/s1?version={version}", null, alice.AccessToken);
        Assert.Equal(1, deleted.Body!["count"]!.GetValue<int>());
        Assert.Equal(0, (await C.DeleteAsync($"{V3}/room_keys/keys?version={version}", null, alice.AccessToken)).Body!["count"]!.GetValue<int>());
    }
}

public sealed class KeyBackupTestsSqlite(SqliteServer f) : KeyBackupTests(f), IClassFixture<SqliteServer>;
public sealed class KeyBackupTestsPostgres(PostgresServer f) : KeyBackupTests(f), IClassFixture<PostgresServer>;
