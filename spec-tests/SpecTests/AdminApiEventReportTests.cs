using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>Synapse's event report admin API (<c>/_synapse/admin/v1/event_reports</c>) over the reports users make.</summary>
public abstract class AdminApiEventReportTests(ServerFixture fixture)
{
    private MatrixClient C => fixture.Client;
    private const string Reports = "/_synapse/admin/v1/event_reports";

    [Fact]
    public async Task Event_reports_are_listed_filtered_paged_shown_and_deleted()
    {
        var admin = await RegistrationTests.CreateAdminAsync(C);
        var sender = await C.RegisterAsync();
        var reporter = await C.RegisterAsync();
        var roomId = await RoomTests.CreateRoomAsync(C, sender, new { name = "Reported room", preset = "public_chat" });
        Assert.Equal(200, (await C.PostAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/join", new { }, reporter.AccessToken)).Status);
        var first = await RoomTests.SendAsync(C, sender, roomId, "first offensive message");
        var second = await RoomTests.SendAsync(C, sender, roomId, "second offensive message");
        foreach (var (eventId, reason) in new[] { (first, "spam"), (second, "abuse") })
            Assert.Equal(200, (await C.PostAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/report/{RoomTests.R(eventId)}", new { reason }, reporter.AccessToken)).Status);

        var refused = await C.GetAsync(Reports, reporter.AccessToken);
        Assert.True(refused is { Status: 403, Errcode: "M_FORBIDDEN" }, refused.ToString());

        var newest = await C.GetAsync($"{Reports}?room_id={RoomTests.R(roomId)}&limit=1", admin);
        Assert.Equal(2, newest.Body!["total"]!.GetValue<int>());
        Assert.Equal(1, newest.Body["next_token"]!.GetValue<int>());
        var report = newest.Body["event_reports"]![0]!;
        Assert.Equal(second, report["event_id"]!.GetValue<string>());
        Assert.Equal("abuse", report["reason"]!.GetValue<string>());
        Assert.Equal(reporter.UserId, report["user_id"]!.GetValue<string>());
        Assert.Equal(sender.UserId, report["sender"]!.GetValue<string>());
        Assert.Equal("Reported room", report["name"]!.GetValue<string>());

        var oldest = await C.GetAsync($"{Reports}?room_id={RoomTests.R(roomId)}&dir=f&from=0&limit=1", admin);
        Assert.Equal(first, oldest.Body!["event_reports"]![0]!["event_id"]!.GetValue<string>());
        Assert.Equal(2, (await C.GetAsync($"{Reports}?event_sender_user_id={Uri.EscapeDataString(sender.UserId)}", admin)).Body!["total"]!.GetValue<int>());
        Assert.Equal(2, (await C.GetAsync($"{Reports}?user_id={Uri.EscapeDataString(reporter.UserId)}", admin)).Body!["total"]!.GetValue<int>());
        Assert.Equal(0, (await C.GetAsync($"{Reports}?user_id={Uri.EscapeDataString(sender.UserId)}", admin)).Body!["total"]!.GetValue<int>());

        var id = Uri.EscapeDataString(report["id"]!.GetValue<string>());
        var details = await C.GetAsync($"{Reports}/{id}", admin);
        Assert.Equal("second offensive message", details.Body!["event_json"]!["content"]!["body"]!.GetValue<string>());
        Assert.Equal(200, (await C.DeleteAsync($"{Reports}/{id}", new { }, admin)).Status);
        Assert.Equal("M_NOT_FOUND", (await C.GetAsync($"{Reports}/{id}", admin)).Errcode);
        Assert.Equal("M_NOT_FOUND", (await C.DeleteAsync($"{Reports}/{id}", new { }, admin)).Errcode);
        Assert.Equal(1, (await C.GetAsync($"{Reports}?room_id={RoomTests.R(roomId)}", admin)).Body!["total"]!.GetValue<int>());

        foreach (var bad in new[] { "dir=x", "limit=-1", "from=z" })
            Assert.Equal("M_INVALID_PARAM", (await C.GetAsync($"{Reports}?{bad}", admin)).Errcode);
    }
}

public sealed class AdminApiEventReportTestsSqlite(SqliteServer f) : AdminApiEventReportTests(f), IClassFixture<SqliteServer>;
public sealed class AdminApiEventReportTestsPostgres(PostgresServer f) : AdminApiEventReportTests(f), IClassFixture<PostgresServer>;
