using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>Spec: account suspension and locking (v1.18 admin endpoints): what a suspended or locked account may still do.</summary>
public abstract class AccountModerationTests(ServerFixture fixture)
{
    private MatrixClient C => fixture.Client;
    private const string V3 = "/_matrix/client/v3";
    private const string Admin = "/_matrix/client/v1/admin";

    [Fact]
    public async Task A_suspended_account_reads_leaves_and_redacts_its_own_but_does_not_act()
    {
        var admin = await RegistrationTests.CreateAdminAsync(C);
        var alice = await C.RegisterAsync();
        var bob = await C.RegisterAsync();
        var roomId = await RoomTests.CreateRoomAsync(C, alice, new { preset = "public_chat" });
        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{RoomTests.R(roomId)}/join", new { }, bob.AccessToken)).Status);
        var bobsMessage = await RoomTests.SendAsync(C, bob, roomId, "before");
        var alicesMessage = await RoomTests.SendAsync(C, alice, roomId, "from alice");
        var path = $"{Admin}/suspend/{Uri.EscapeDataString(bob.UserId)}";

        Assert.Equal(403, (await C.PutAsync(path, new { suspended = true }, alice.AccessToken)).Status);
        Assert.True((await C.PutAsync(path, new { suspended = true }, admin)).Body!["suspended"]!.GetValue<bool>());
        Assert.True((await C.GetAsync(path, admin)).Body!["suspended"]!.GetValue<bool>());

        var send = await C.PutAsync($"{V3}/rooms/{RoomTests.R(roomId)}/send/m.room.message/{Guid.NewGuid():N}", new { msgtype = "m.text", body = "x" }, bob.AccessToken);
        Assert.Equal(403, send.Status);
        Assert.Equal("M_USER_SUSPENDED", send.Errcode);
        Assert.Equal("M_USER_SUSPENDED", (await C.PutAsync($"{V3}/profile/{Uri.EscapeDataString(bob.UserId)}/displayname", new { displayname = "B" }, bob.AccessToken)).Errcode);
        Assert.Equal("M_USER_SUSPENDED", (await C.PostAsync($"{V3}/createRoom", new { }, bob.AccessToken)).Errcode);
        Assert.Equal("M_USER_SUSPENDED", (await C.PutAsync($"{V3}/rooms/{RoomTests.R(roomId)}/redact/{RoomTests.R(alicesMessage)}/{Guid.NewGuid():N}", new { }, bob.AccessToken)).Errcode);
        Assert.Equal(200, (await C.GetAsync($"{V3}/sync", bob.AccessToken)).Status);
        Assert.Equal(200, (await C.PutAsync($"{V3}/rooms/{RoomTests.R(roomId)}/redact/{RoomTests.R(bobsMessage)}/{Guid.NewGuid():N}", new { }, bob.AccessToken)).Status);
        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{RoomTests.R(roomId)}/leave", new { }, bob.AccessToken)).Status);
        Assert.Equal("M_USER_SUSPENDED", (await C.PostAsync($"{V3}/rooms/{RoomTests.R(roomId)}/join", new { }, bob.AccessToken)).Errcode);

        Assert.False((await C.PutAsync(path, new { suspended = false }, admin)).Body!["suspended"]!.GetValue<bool>());
        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{RoomTests.R(roomId)}/join", new { }, bob.AccessToken)).Status);
    }

    [Fact]
    public async Task A_locked_account_may_only_log_out_and_keeps_its_sessions_for_the_unlock()
    {
        var admin = await RegistrationTests.CreateAdminAsync(C);
        var carol = await C.RegisterAsync();
        var path = $"{Admin}/lock/{Uri.EscapeDataString(carol.UserId)}";
        Assert.True((await C.PutAsync(path, new { locked = true }, admin)).Body!["locked"]!.GetValue<bool>());

        var refused = await C.GetAsync($"{V3}/account/whoami", carol.AccessToken);
        Assert.Equal(401, refused.Status);
        Assert.Equal("M_USER_LOCKED", refused.Errcode);
        Assert.True(refused.Body!["soft_logout"]!.GetValue<bool>());
        Assert.Equal("M_USER_LOCKED", (await C.LoginAsync(carol.UserId, carol.Password)).Errcode);

        Assert.False((await C.PutAsync(path, new { locked = false }, admin)).Body!["locked"]!.GetValue<bool>());
        Assert.Equal(200, (await C.GetAsync($"{V3}/account/whoami", carol.AccessToken)).Status);

        Assert.Equal("M_INVALID_PARAM", (await C.GetAsync($"{Admin}/lock/{Uri.EscapeDataString("@someone:elsewhere.example")}", admin)).Errcode);
        Assert.Equal("M_NOT_FOUND", (await C.GetAsync($"{Admin}/lock/{Uri.EscapeDataString($"@nobody{Guid.NewGuid():N}:{C.ServerName}")}", admin)).Errcode);
        Assert.Equal("M_MISSING_PARAM", (await C.PutAsync(path, new { }, admin)).Errcode);

        // Locked, a session can still log out.
        Assert.Equal(200, (await C.PutAsync(path, new { locked = true }, admin)).Status);
        Assert.Equal(200, (await C.PostAsync($"{V3}/logout", new { }, carol.AccessToken)).Status);
    }
}

public sealed class AccountModerationTestsSqlite(SqliteServer f) : AccountModerationTests(f), IClassFixture<SqliteServer>;
public sealed class AccountModerationTestsPostgres(PostgresServer f) : AccountModerationTests(f), IClassFixture<PostgresServer>;
