using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>Synapse's media admin API, moderating part: details, quarantine, protection, deletion and the remote cache.</summary>
public abstract class AdminApiMediaModerationTests(ServerFixture fixture)
{
    private MatrixClient C => fixture.Client;
    private const string V1 = "/_synapse/admin/v1";
    private MediaClient Media => new(fixture.Server.BaseUrl);

    [Fact]
    public async Task Quarantined_media_is_served_to_nobody_until_lifted_and_protected_media_is_never_quarantined()
    {
        var admin = await RegistrationTests.CreateAdminAsync(C);
        var user = await C.RegisterAsync();
        var (bad, kept, other) = (await UploadAsync(user, "bad.png"), await UploadAsync(user, "kept.txt"), await UploadAsync(user, "other.txt"));
        Assert.Equal(200, await DownloadStatusAsync(bad, user));
        var thumbnail = $"/_matrix/client/v1/media/thumbnail/{C.ServerName}/{bad}?width=32&height=32";
        using (var before = await Media.GetAsync(thumbnail, user.AccessToken))
            Assert.Equal(200, (int)before.StatusCode);

        var info = await C.GetAsync($"{V1}/media/{C.ServerName}/{bad}", admin);
        Assert.Equal(user.UserId, info.Body!["media_info"]!["user_id"]!.GetValue<string>());
        Assert.Equal("bad.png", info.Body["media_info"]!["upload_name"]!.GetValue<string>());
        Assert.Null(info.Body["media_info"]!["quarantined_by"]);

        Assert.Equal(200, (await C.PostAsync($"{V1}/media/quarantine/{C.ServerName}/{bad}", new { }, admin)).Status);
        Assert.Equal(404, await DownloadStatusAsync(bad, user));
        using (var after = await Media.GetAsync(thumbnail, user.AccessToken))
            Assert.Equal(404, (int)after.StatusCode);
        Assert.NotNull((await C.GetAsync($"{V1}/media/{C.ServerName}/{bad}", admin)).Body!["media_info"]!["quarantined_by"]);
        Assert.Equal(200, (await C.PostAsync($"{V1}/media/unquarantine/{C.ServerName}/{bad}", new { }, admin)).Status);
        Assert.Equal(200, await DownloadStatusAsync(bad, user));

        Assert.Equal(200, (await C.PostAsync($"{V1}/media/protect/{kept}", new { }, admin)).Status);
        var byUser = await C.PostAsync($"{V1}/user/{Uri.EscapeDataString(user.UserId)}/media/quarantine", new { }, admin);
        Assert.Equal(2, byUser.Body!["num_quarantined"]!.GetValue<int>());
        Assert.Equal(200, await DownloadStatusAsync(kept, user));
        Assert.Equal(404, await DownloadStatusAsync(other, user));
        Assert.True((await C.GetAsync($"{V1}/media/{C.ServerName}/{kept}", admin)).Body!["media_info"]!["safe_from_quarantine"]!.GetValue<bool>());
        Assert.Equal(200, (await C.PostAsync($"{V1}/media/unprotect/{kept}", new { }, admin)).Status);
        Assert.Equal(200, (await C.PostAsync($"{V1}/media/quarantine/{C.ServerName}/{kept}", new { }, admin)).Status);
        Assert.Equal(404, await DownloadStatusAsync(kept, user));

        foreach (var path in new[] { $"{V1}/media/quarantine/{C.ServerName}/{bad}", $"{V1}/media/protect/{bad}", $"{V1}/media/delete?before_ts=1",
                     $"{V1}/purge_media_cache?before_ts=1", $"{V1}/user/{Uri.EscapeDataString(user.UserId)}/media/quarantine" })
            Assert.Equal(403, (await C.PostAsync(path, new { }, user.AccessToken)).Status);
        Assert.Equal(403, (await C.GetAsync($"{V1}/media/{C.ServerName}/{bad}", user.AccessToken)).Status);
        Assert.Equal(404, (await C.GetAsync($"{V1}/media/{C.ServerName}/nosuchmedia", admin)).Status);
        Assert.Equal(404, (await C.PostAsync($"{V1}/media/protect/nosuchmedia", new { }, admin)).Status);
    }

    [Fact]
    public async Task Quarantining_a_room_takes_every_medium_its_events_point_at()
    {
        var admin = await RegistrationTests.CreateAdminAsync(C);
        var user = await C.RegisterAsync();
        var roomId = await RoomTests.CreateRoomAsync(C, user);
        var (image, file, unrelated) = (await UploadAsync(user, "a.png"), await UploadAsync(user, "b.pdf"), await UploadAsync(user, "c.txt"));
        Assert.Equal(200, (await C.PutAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/send/m.room.message/m1",
            new { msgtype = "m.image", body = "a.png", url = $"mxc://{C.ServerName}/{image}" }, user.AccessToken)).Status);
        Assert.Equal(200, (await C.PutAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/send/m.room.message/m2",
            new { msgtype = "m.file", body = "b.pdf", info = new { thumbnail_url = $"mxc://{C.ServerName}/{file}" } }, user.AccessToken)).Status);

        var listed = await C.GetAsync($"{V1}/room/{RoomTests.R(roomId)}/media", admin);
        Assert.Equal(new[] { $"mxc://{C.ServerName}/{image}", $"mxc://{C.ServerName}/{file}" }.Order(StringComparer.Ordinal),
            listed.Body!["local"]!.AsArray().Select(n => n!.GetValue<string>()).Order(StringComparer.Ordinal));
        Assert.Empty(listed.Body["remote"]!.AsArray());
        var quarantined = await C.PostAsync($"{V1}/room/{RoomTests.R(roomId)}/media/quarantine", new { }, admin);
        Assert.Equal(2, quarantined.Body!["num_quarantined"]!.GetValue<int>());
        Assert.Equal(404, await DownloadStatusAsync(image, user));
        Assert.Equal(404, await DownloadStatusAsync(file, user));
        Assert.Equal(200, await DownloadStatusAsync(unrelated, user));
    }

    [Fact]
    public async Task Deleting_media_removes_it_and_its_thumbnails_by_id_by_user_and_by_age_sparing_avatars()
    {
        var admin = await RegistrationTests.CreateAdminAsync(C);
        var user = await C.RegisterAsync();
        var (one, avatar, old) = (await UploadAsync(user, "one.txt"), await UploadAsync(user, "avatar.txt"), await UploadAsync(user, "old.txt"));
        Assert.Equal(200, (await C.PutAsync($"/_matrix/client/v3/profile/{Uri.EscapeDataString(user.UserId)}/avatar_url",
            new { avatar_url = $"mxc://{C.ServerName}/{avatar}" }, user.AccessToken)).Status);

        var deleted = await C.DeleteAsync($"{V1}/media/{C.ServerName}/{one}", null, admin);
        Assert.Equal([one], deleted.Body!["deleted_media"]!.AsArray().Select(n => n!.GetValue<string>()));
        Assert.Equal(1, deleted.Body["total"]!.GetValue<int>());
        Assert.Equal(404, await DownloadStatusAsync(one, user));
        Assert.Equal(404, (await C.DeleteAsync($"{V1}/media/{C.ServerName}/{one}", null, admin)).Status);
        Assert.Equal("M_INVALID_PARAM", (await C.DeleteAsync($"{V1}/media/elsewhere.example/{avatar}", null, admin)).Errcode);

        var future = DateTimeOffset.UtcNow.AddMinutes(10).ToUnixTimeMilliseconds();
        Assert.Equal("M_MISSING_PARAM", (await C.PostAsync($"{V1}/media/delete", new { }, admin)).Errcode);
        var byAge = await C.PostAsync($"{V1}/media/delete?before_ts={future}&size_gt=0", new { }, admin);
        var byAgeIds = byAge.Body!["deleted_media"]!.AsArray().Select(n => n!.GetValue<string>()).ToList();
        Assert.Contains(old, byAgeIds);
        Assert.DoesNotContain(avatar, byAgeIds);
        Assert.Equal(404, await DownloadStatusAsync(old, user));
        Assert.Equal(200, await DownloadStatusAsync(avatar, user));

        var rest = await C.DeleteAsync($"{V1}/users/{Uri.EscapeDataString(user.UserId)}/media", null, admin);
        Assert.Equal([avatar], rest.Body!["deleted_media"]!.AsArray().Select(n => n!.GetValue<string>()));
        Assert.Equal(0, (await C.GetAsync($"{V1}/users/{Uri.EscapeDataString(user.UserId)}/media", admin)).Body!["total"]!.GetValue<int>());
        Assert.Equal(0, (await C.PostAsync($"{V1}/purge_media_cache?before_ts={future}", new { }, admin)).Body!["deleted"]!.GetValue<int>());
    }

    private async Task<string> UploadAsync(LoggedInUser user, string name)
    {
        var bytes = name.EndsWith(".png") ? TestImages.Png(8, 8) : System.Text.Encoding.UTF8.GetBytes(name);
        var upload = await Media.UploadAsync(bytes, name.EndsWith(".png") ? "image/png" : "text/plain", user.AccessToken, name);
        Assert.Equal(200, upload.Status);
        return upload.Str("content_uri").Split('/')[^1];
    }

    private async Task<int> DownloadStatusAsync(string mediaId, LoggedInUser user)
    {
        using var response = await Media.GetAsync($"/_matrix/client/v1/media/download/{C.ServerName}/{mediaId}", user.AccessToken);
        return (int)response.StatusCode;
    }
}

public sealed class AdminApiMediaModerationTestsSqlite(SqliteServer f) : AdminApiMediaModerationTests(f), IClassFixture<SqliteServer>;
public sealed class AdminApiMediaModerationTestsPostgres(PostgresServer f) : AdminApiMediaModerationTests(f), IClassFixture<PostgresServer>;
