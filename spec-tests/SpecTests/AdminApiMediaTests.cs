using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>Synapse's media admin API, reading part: a user's uploads and users' upload totals.</summary>
public abstract class AdminApiMediaTests(ServerFixture fixture)
{
    private MatrixClient C => fixture.Client;
    private const string V1 = "/_synapse/admin/v1";

    [Fact]
    public async Task A_users_uploads_and_upload_totals_are_listed_sorted_and_paged()
    {
        var admin = await RegistrationTests.CreateAdminAsync(C);
        var user = await C.RegisterAsync();
        var media = new MediaClient(fixture.Server.BaseUrl);
        var ids = new List<string>();
        foreach (var (size, name) in new[] { (10, "small.txt"), (30, "large.txt"), (20, "medium.txt") })
        {
            var upload = await media.UploadAsync(new byte[size], "text/plain", user.AccessToken, name);
            Assert.Equal(200, upload.Status);
            ids.Add(upload.Str("content_uri").Split('/')[^1]);
        }
        var path = $"{V1}/users/{Uri.EscapeDataString(user.UserId)}/media";
        Assert.Equal(403, (await C.GetAsync(path, user.AccessToken)).Status);

        var newest = await C.GetAsync($"{path}?limit=2", admin);
        Assert.Equal(3, newest.Body!["total"]!.GetValue<int>());
        Assert.Equal(2, newest.Body["next_token"]!.GetValue<int>());
        var created = newest.Body["media"]!.AsArray().Select(m => m!["created_ts"]!.GetValue<long>()).ToList();
        Assert.True(created[0] >= created[1], "newest first by default");
        var all = (await C.GetAsync(path, admin)).Body!["media"]!.AsArray();
        var medium = all.Single(m => m!["media_id"]!.GetValue<string>() == ids[2])!;
        Assert.Equal(20, medium["media_length"]!.GetValue<int>());
        Assert.Equal("text/plain", medium["media_type"]!.GetValue<string>());
        Assert.Equal("medium.txt", medium["upload_name"]!.GetValue<string>());
        Assert.False(medium["safe_from_quarantine"]!.GetValue<bool>());

        var bySize = await C.GetAsync($"{path}?order_by=media_length", admin);
        Assert.Equal([10, 20, 30], bySize.Body!["media"]!.AsArray().Select(m => m!["media_length"]!.GetValue<int>()));
        var last = await C.GetAsync($"{path}?order_by=media_length&dir=b&from=2", admin);
        Assert.Equal([10], last.Body!["media"]!.AsArray().Select(m => m!["media_length"]!.GetValue<int>()));
        Assert.Null(last.Body["next_token"]);
        Assert.Equal("M_INVALID_PARAM", (await C.GetAsync($"{path}?order_by=size", admin)).Errcode);

        var usage = await C.GetAsync($"{V1}/statistics/users/media?search_term={user.Localpart}", admin);
        Assert.Equal(1, usage.Body!["total"]!.GetValue<int>());
        var entry = usage.Body["users"]![0]!;
        Assert.Equal(user.UserId, entry["user_id"]!.GetValue<string>());
        Assert.Equal(3, entry["media_count"]!.GetValue<int>());
        Assert.Equal(60, entry["media_length"]!.GetValue<int>());
        Assert.Equal(user.Localpart, entry["displayname"]!.GetValue<string>());
        Assert.Equal(0, (await C.GetAsync($"{V1}/statistics/users/media?search_term={user.Localpart}&until_ts=1", admin)).Body!["total"]!.GetValue<int>());
        Assert.Equal(200, (await C.GetAsync($"{V1}/statistics/users/media?order_by=media_length&dir=b", admin)).Status);
        Assert.Equal(403, (await C.GetAsync($"{V1}/statistics/users/media", user.AccessToken)).Status);
        Assert.Equal("M_INVALID_PARAM", (await C.GetAsync($"{V1}/statistics/users/media?from_ts=yesterday", admin)).Errcode);
    }
}

public sealed class AdminApiMediaTestsSqlite(SqliteServer f) : AdminApiMediaTests(f), IClassFixture<SqliteServer>;
public sealed class AdminApiMediaTestsPostgres(PostgresServer f) : AdminApiMediaTests(f), IClassFixture<PostgresServer>;
