using System.Text.Json.Nodes;
using Matrix.AppServices.Sdk;
using Matrix.Bridges.Calendar;
using Matrix.Bridges.Calendar.ICalendar;
using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>
/// The calendar bridge (src/Bridges/Calendar) against a real Radicale CalDAV server and a real homeserver, with the
/// bridge's clock in the test's hand: a room admin links a calendar (the password never stays in the room or on
/// disk in the clear), events added from chat appear in CalDAV, events changed directly in CalDAV are announced once,
/// reminders and the agenda come at the right time, a series with an exception and an override is listed and edited
/// right, and a calendar server outage delays announcements without duplicating them.
/// </summary>
public sealed class CalendarBridgeTests : IAsyncLifetime
{
    private readonly string _dir = Directory.CreateTempSubdirectory("hs-calendar-").FullName;
    // The bridge's clock: a fixed morning, so "tomorrow 10:00" and the agenda time are predictable.
    private static readonly DateTime _day = DateTime.UtcNow.Date;
    private readonly ManualClock _clock = new(new DateTimeOffset(_day.AddHours(7), TimeSpan.Zero));
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(30) };
    private readonly List<string> _problems = [];
    private TestCalDavServer _dav = null!;
    private TestDatabase _database = null!;
    private HomeserverProcess _server = null!;
    private BridgeRuntime _runtime = null!;
    private CalendarBridge _bridge = null!;
    private CalendarBridgeConfig _config = null!;
    private LoggedInUser _alice = null!;
    private string _roomId = "";
    private string _calendarUrl = "";
    private string _lastCommandId = "";
    private MatrixClient C => new(_server.BaseUrl, _server.ServerName);
    private string BotId => $"@calendar:{_server.ServerName}";

    public async Task InitializeAsync()
    {
        _dav = await TestCalDavServer.StartAsync();
        _calendarUrl = await _dav.CreateCalendarAsync("work");
        _database = await TestDatabase.CreateAsync("sqlite");
        var registration = Path.Combine(_dir, "calendar-registration.yaml");
        _server = new HomeserverProcess(_database.Yaml, $"""
            app_service_config_files:
              - {registration}
            """);
        var configPath = Path.Combine(_dir, "calendar-bridge.yaml");
        await File.WriteAllTextAsync(configPath, $"""
            homeserver:
              url: {_server.BaseUrl}
              server_name: {_server.ServerName}
            appservice:
              id: calendar
              port: {FreePorts.Next()}
              registration: calendar-registration.yaml
              data_dir: ./data
              sender_localpart: calendar
            calendar:
              sync_interval_seconds: 60
              reminder_lead_minutes: 15
              agenda_time: "08:00"
              time_zone: UTC
              max_backoff_seconds: 600
            """);
        _config = BridgeConfig.Load<CalendarBridgeConfig>(configPath);
        BridgeRuntime.WriteRegistration(_config);
        await _server.StartAsync();
        _runtime = BridgeRuntime.Create(_config);
        _bridge = new CalendarBridge(_config, _runtime.AppService, new LinkStore(_runtime.AppService.State),
            new CredentialVault(_config.Calendar.CredentialsKeyFile), _clock, _http);
        _bridge.Problem += p => { lock (_problems) _problems.Add(p); };
        await _runtime.StartAsync();

        _alice = await C.RegisterAsync();
        _roomId = (await C.PostAsync("/_matrix/client/v3/createRoom", new
        {
            preset = "private_chat",
            invite = new[] { BotId },
            // Moderator, so that it may redact a command holding a password.
            power_level_content_override = new { users = new Dictionary<string, int> { [_alice.UserId] = 100, [BotId] = 50 } },
        }, _alice.AccessToken)).Str("room_id");
        await WaitForAsync(async () => (await C.GetAsync($"/_matrix/client/v3/rooms/{_roomId}/state/m.room.member/{BotId}", _alice.AccessToken)).Body?["membership"]?.GetValue<string>() == "join",
            "the bridge joins when invited");
    }

    private static async Task WaitForAsync(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting: {what}");
            await Task.Delay(100);
        }
    }

    private async Task<string> SayAsync(string body, LoggedInUser? as_ = null, string? room = null) =>
        (await C.PutAsync($"/_matrix/client/v3/rooms/{room ?? _roomId}/send/m.room.message/{Guid.NewGuid():N}", new { msgtype = "m.text", body },
            (as_ ?? _alice).AccessToken)).Str("event_id");

    /// <summary>The bridge's messages in the room (the test's room unless named), oldest first.</summary>
    private async Task<List<JsonObject>> BotMessagesAsync(string? room = null)
    {
        var chunk = (await C.GetAsync($"/_matrix/client/v3/rooms/{room ?? _roomId}/messages?dir=b&limit=200", _alice.AccessToken)).Body!["chunk"]!.AsArray();
        return chunk.OfType<JsonObject>().Where(e => e["sender"]?.GetValue<string>() == BotId && e["type"]?.GetValue<string>() == "m.room.message").Reverse().ToList();
    }

    /// <summary>Sends a command and returns the bridge's reply to it (which must be in the command's thread).</summary>
    private async Task<string> CommandAsync(string body, LoggedInUser? as_ = null, string? room = null)
    {
        var eventId = _lastCommandId = await SayAsync(body, as_, room);
        JsonObject? reply = null;
        await WaitForAsync(async () => (reply = (await BotMessagesAsync(room)).LastOrDefault(m => m["content"]?["m.relates_to"]?["m.in_reply_to"]?["event_id"]?.GetValue<string>() == eventId)) is not null,
            $"a reply to {body}");
        Assert.Equal("m.thread", reply!["content"]!["m.relates_to"]!["rel_type"]!.GetValue<string>());
        Assert.Equal(eventId, reply["content"]!["m.relates_to"]!["event_id"]!.GetValue<string>());
        Assert.Equal("m.notice", reply["content"]!["msgtype"]!.GetValue<string>());
        return reply["content"]!["body"]!.GetValue<string>();
    }

    private async Task<List<string>> NoticesAsync() =>
        (await BotMessagesAsync()).Where(m => m["content"]?["m.relates_to"] is null).Select(m => m["content"]!["body"]!.GetValue<string>()).ToList();

    private async Task LinkAsync()
    {
        var reply = await CommandAsync($"!cal link {_dav.WithCredentials(_calendarUrl)}");
        Assert.True(reply.StartsWith("Linked to", StringComparison.Ordinal), reply);
    }

    /// <summary>Moves the bridge's clock and runs one round of its schedule.</summary>
    private async Task TickAtAsync(DateTimeOffset at)
    {
        _clock.Now = at;
        await _bridge.TickAsync(CancellationToken.None);
    }

    /// <summary>A time on the day the test starts (UTC, the room's zone).</summary>
    private DateTimeOffset Today(int hour, int minute = 0) => new(_day.AddHours(hour).AddMinutes(minute), TimeSpan.Zero);

    private static string Event(string uid, string summary, DateTimeOffset start, TimeSpan length, string extra = "") =>
        $"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//other client//EN\r\nBEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\n"
        + $"DTSTART:{start.UtcDateTime:yyyyMMdd'T'HHmmss'Z'}\r\nDTEND:{(start + length).UtcDateTime:yyyyMMdd'T'HHmmss'Z'}\r\nSUMMARY:{summary}\r\n{extra}END:VEVENT\r\nEND:VCALENDAR\r\n";

    [Fact]
    public async Task A_room_admin_links_a_calendar_and_events_added_from_chat_appear_in_caldav()
    {
        await LinkAsync();
        var linkCommand = _lastCommandId;
        // The command held the calendar password: redacted, and the state on disk holds it only encrypted.
        var command = (await C.GetAsync($"/_matrix/client/v3/rooms/{_roomId}/event/{linkCommand}", _alice.AccessToken)).Body!;
        Assert.Empty(command["content"]!.AsObject());
        _runtime.AppService.State.Flush();
        var stateFile = await File.ReadAllTextAsync(Path.Combine(_config.AppService.DataDir, "state.json"));
        Assert.DoesNotContain(TestCalDavServer.Password, stateFile);
        Assert.DoesNotContain(Uri.EscapeDataString(TestCalDavServer.Password), stateFile);
        Assert.Contains("credential", stateFile);

        var added = await CommandAsync("!cal add \"Design review\" tomorrow 10:00 1h30m");
        Assert.StartsWith("Added Design review", added);
        var stored = Assert.Single(await _dav.ObjectsAsync(_calendarUrl));
        var tomorrow10 = Today(10).AddDays(1);
        var occurrence = CalendarObject.Parse(stored, TimeZoneInfo.Utc).Occurrences(tomorrow10.AddDays(-1), tomorrow10.AddDays(1)).Single();
        Assert.Equal("Design review", occurrence.Summary);
        Assert.Equal(tomorrow10, occurrence.Start);
        Assert.Equal(TimeSpan.FromMinutes(90), occurrence.End - occurrence.Start);

        var list = await CommandAsync("!cal list");
        Assert.Contains("Design review", list);
        Assert.Contains(EventText.ShortId(occurrence), list);

        // Moving it from chat rewrites the object in CalDAV; the bridge's own change is not announced back.
        Assert.StartsWith("Moved Design review", await CommandAsync($"!cal move {EventText.ShortId(occurrence)} tomorrow 15:00"));
        var moved = CalendarObject.Parse(Assert.Single(await _dav.ObjectsAsync(_calendarUrl)), TimeZoneInfo.Utc);
        Assert.Equal(Today(15).AddDays(1), moved.Occurrences(tomorrow10.AddDays(-1), tomorrow10.AddDays(1)).Single().Start);
        await TickAtAsync(_clock.Now.AddMinutes(2));
        Assert.Empty(await NoticesAsync());

        // Wrong syntax is explained; settings are for room admins only.
        Assert.Contains("Usage: !cal add \"Title\" <day> <HH:MM> [length]", await CommandAsync("!cal add \"Design review\" tomorrow"));
        Assert.Contains("is not a length", await CommandAsync("!cal add \"Standup\" tomorrow 09:00 forever"));
        Assert.Contains("No event with id", await CommandAsync("!cal cancel 000000"));
        var bob = await C.RegisterAsync();
        await C.PostAsync($"/_matrix/client/v3/rooms/{_roomId}/invite", new { user_id = bob.UserId }, _alice.AccessToken);
        await C.PostAsync($"/_matrix/client/v3/join/{_roomId}", new { }, bob.AccessToken);
        Assert.StartsWith("Only room admins", await CommandAsync("!cal lead 5", bob));
        Assert.StartsWith("Cancelled Design review", await CommandAsync($"!cal cancel {EventText.ShortId(occurrence)}", bob));
        Assert.Empty(await _dav.ObjectsAsync(_calendarUrl));
    }

    [Fact]
    public async Task Changes_made_in_caldav_are_announced_once_and_reminders_and_agenda_come_on_time()
    {
        await _dav.PutAsync(_calendarUrl, "existing.ics", Event("existing", "Already there", Today(12), TimeSpan.FromHours(1)));
        await LinkAsync();
        var start = _clock.Now;
        await TickAtAsync(start.AddMinutes(1));
        Assert.Empty(await NoticesAsync());

        await _dav.PutAsync(_calendarUrl, "budget.ics", Event("budget", "Budget meeting", Today(14), TimeSpan.FromHours(1), "LOCATION:Room 4\r\n"));
        await TickAtAsync(start.AddMinutes(30));
        await TickAtAsync(start.AddMinutes(31));
        Assert.Equal(["New in the calendar: Budget meeting, " + When(Today(14), Today(15)) + " at Room 4"], await NoticesAsync());

        await _dav.PutAsync(_calendarUrl, "budget.ics", Event("budget", "Budget meeting", Today(16), TimeSpan.FromHours(1), "LOCATION:Room 4\r\nSEQUENCE:1\r\n"));
        await TickAtAsync(start.AddMinutes(32));
        await TickAtAsync(start.AddMinutes(33));
        Assert.Equal("Changed in the calendar: Budget meeting, " + When(Today(16), Today(17)) + $" at Room 4 (moved from {When(Today(14), Today(15))})", (await NoticesAsync())[^1]);

        // The agenda at 08:00, once.
        await TickAtAsync(Today(7, 59));
        Assert.Equal(2, (await NoticesAsync()).Count);
        await TickAtAsync(Today(8));
        await TickAtAsync(Today(8, 1));
        var notices = await NoticesAsync();
        Assert.Equal(3, notices.Count);
        Assert.StartsWith("Today, ", notices[2]);
        Assert.Contains("12:00–13:00 Already there", notices[2]);
        Assert.Contains("16:00–17:00 Budget meeting", notices[2]);

        // The reminder 15 minutes before, not 16, and only once.
        await TickAtAsync(Today(15, 44));
        Assert.Equal(3, (await NoticesAsync()).Count);
        await TickAtAsync(Today(15, 45));
        await TickAtAsync(Today(15, 50));
        var reminders = (await NoticesAsync()).Where(n => n.StartsWith("Reminder: Budget")).ToList();
        Assert.Equal(["Reminder: Budget meeting starts in 15 min (" + When(Today(16), Today(17)) + ") at Room 4"], reminders);

        await _dav.DeleteAsync(_calendarUrl, "budget.ics");
        await TickAtAsync(Today(15, 55));
        Assert.StartsWith("Cancelled in the calendar: Budget meeting", (await NoticesAsync())[^1]);
    }

    [Fact]
    public async Task A_series_with_an_exception_and_an_override_is_listed_reminded_and_edited_right()
    {
        var day1 = Today(10).AddDays(1);
        var z = (DateTimeOffset d) => d.UtcDateTime.ToString("yyyyMMdd'T'HHmmss");
        var series = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//other client//EN\r\n"
            + $"BEGIN:VEVENT\r\nUID:standup\r\nDTSTAMP:20260101T000000Z\r\nDTSTART;TZID=Etc/UTC:{z(day1)}\r\nDURATION:PT15M\r\nSUMMARY:Standup\r\n"
            + $"RRULE:FREQ=DAILY;COUNT=5\r\nEXDATE;TZID=Etc/UTC:{z(day1.AddDays(1))}\r\nEND:VEVENT\r\n"
            + $"BEGIN:VEVENT\r\nUID:standup\r\nDTSTAMP:20260101T000000Z\r\nRECURRENCE-ID;TZID=Etc/UTC:{z(day1.AddDays(2))}\r\n"
            + $"DTSTART;TZID=Etc/UTC:{z(day1.AddDays(2).AddHours(4))}\r\nDURATION:PT15M\r\nSUMMARY:Standup (afternoon)\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        await _dav.PutAsync(_calendarUrl, "standup.ics", series);
        await LinkAsync();

        var list = (await CommandAsync("!cal list 7")).Split('\n').Skip(1).ToList();
        Assert.Equal(4, list.Count);
        Assert.Contains(When(day1, day1.AddMinutes(15)) + " Standup", list[0]);
        Assert.Contains(When(day1.AddDays(2).AddHours(4), day1.AddDays(2).AddHours(4).AddMinutes(15)) + " Standup (afternoon)", list[1]);
        Assert.Contains(When(day1.AddDays(3), day1.AddDays(3).AddMinutes(15)) + " Standup", list[2]);

        // The override's reminder comes before its moved time, not before the original one.
        await TickAtAsync(day1.AddDays(2).AddMinutes(-15));
        Assert.DoesNotContain(await NoticesAsync(), n => n.StartsWith("Reminder"));
        await TickAtAsync(day1.AddDays(2).AddHours(4).AddMinutes(-15));
        Assert.Contains(await NoticesAsync(), n => n.StartsWith("Reminder: Standup (afternoon) starts in 15 min"));

        // Cancelling one occurrence from chat writes an EXDATE; the rest of the series stays.
        var fourth = CalendarObject.Parse(series, TimeZoneInfo.Utc).Occurrences(day1.AddDays(3), day1.AddDays(3).AddMinutes(1)).Single();
        Assert.Contains("(this occurrence only)", await CommandAsync($"!cal cancel {EventText.ShortId(fourth)}"));
        var stored = CalendarObject.Parse(Assert.Single(await _dav.ObjectsAsync(_calendarUrl)), TimeZoneInfo.Utc);
        var remaining = stored.Occurrences(day1.AddDays(-1), day1.AddDays(10)).Select(o => o.Start).ToList();
        Assert.Equal([day1, day1.AddDays(2).AddHours(4), day1.AddDays(4)], remaining);
    }

    [Fact]
    public async Task A_calendar_server_outage_delays_announcements_without_duplicates()
    {
        await LinkAsync();
        var start = _clock.Now;
        await _dav.PutAsync(_calendarUrl, "launch.ics", Event("launch", "Launch", Today(13), TimeSpan.FromHours(1)));
        await _dav.StopAsync();

        await TickAtAsync(start.AddMinutes(2));
        Assert.Single(_problems);
        // Backing off: the next tick within the delay does not try again.
        await TickAtAsync(start.AddMinutes(2).AddSeconds(30));
        Assert.Single(_problems);
        Assert.Contains("could not be reached", await CommandAsync("!cal add \"Retro\" tomorrow 11:00"));

        await _dav.StartAgainAsync();
        await TickAtAsync(start.AddMinutes(5));
        await TickAtAsync(start.AddMinutes(7));
        await TickAtAsync(start.AddMinutes(9));
        Assert.Equal(["New in the calendar: Launch, " + When(Today(13), Today(14))], await NoticesAsync());

        // A second bridge process on the same data (a restart) announces nothing again.
        await _runtime.DisposeAsync();
        _runtime = BridgeRuntime.Create(_config);
        _bridge = new CalendarBridge(_config, _runtime.AppService, new LinkStore(_runtime.AppService.State),
            new CredentialVault(_config.Calendar.CredentialsKeyFile), _clock, _http);
        await _runtime.StartAsync();
        await TickAtAsync(start.AddMinutes(20));
        Assert.Single(await NoticesAsync());
        // The event added while the calendar was down was not added later either.
        Assert.Single(await _dav.ObjectsAsync(_calendarUrl));
    }

    [Fact]
    public async Task A_calendar_linked_in_the_config_is_used_with_its_settings_and_only_the_operator_unlinks_it()
    {
        _config.Calendars.Add(new CalendarBridgeConfig.LinkSection
        {
            Room = _roomId, Url = _calendarUrl, Username = TestCalDavServer.User, Password = TestCalDavServer.Password,
            ReminderLeadMinutes = 30, AgendaTime = "off", TimeZone = "Europe/Berlin",
        });
        await _bridge.ApplyConfiguredLinksAsync(CancellationToken.None);
        _runtime.AppService.State.Flush();
        Assert.DoesNotContain(TestCalDavServer.Password, await File.ReadAllTextAsync(Path.Combine(_config.AppService.DataDir, "state.json")));
        Assert.Contains("linked in the bridge's config", await CommandAsync("!cal unlink"));

        await TickAtAsync(_clock.Now);
        await _dav.PutAsync(_calendarUrl, "review.ics", Event("review", "Review", Today(12), TimeSpan.FromHours(1)));
        await TickAtAsync(Today(11, 29));
        await TickAtAsync(Today(11, 30));
        var notices = await NoticesAsync();
        // Times in the room's zone (Berlin, UTC+1 or +2), the reminder 30 minutes ahead, no agenda.
        var berlin = TimeZoneInfo.FindSystemTimeZoneById("Europe/Berlin");
        var local = EventText.When(new Occurrence("x", ZoneTime.Utc(Today(12)), Today(12), Today(13), false, null!), berlin);
        Assert.Equal([$"New in the calendar: Review, {local}", $"Reminder: Review starts in 30 min ({local})"], notices);

        // Taken out of the config: unlinked at the next start.
        _config.Calendars.Clear();
        await _bridge.ApplyConfiguredLinksAsync(CancellationToken.None);
        Assert.StartsWith("This room is not linked", await CommandAsync("!cal list"));
    }

    [Fact]
    public async Task A_server_without_collection_sync_is_compared_by_ctag_and_etags()
    {
        // A proxy in front of Radicale that hides its sync token, as servers without RFC 6578 have none.
        var requests = new System.Collections.Concurrent.ConcurrentQueue<string>();
        await using var proxy = new LoopbackListener(context => ForwardWithoutSyncAsync(context, requests));
        var proxiedUrl = _calendarUrl.Replace(_dav.BaseUrl, proxy.BaseUrl);
        await _dav.PutAsync(_calendarUrl, "existing.ics", Event("existing", "Already there", Today(12), TimeSpan.FromHours(1)));
        Assert.StartsWith("Linked to", await CommandAsync($"!cal link {_dav.WithCredentials(proxiedUrl)}"));
        Assert.Contains("Already there", await CommandAsync("!cal list"));

        requests.Clear();
        await TickAtAsync(_clock.Now.AddMinutes(2));
        Assert.Equal(["PROPFIND 0"], requests);
        await _dav.PutAsync(_calendarUrl, "new.ics", Event("new", "Planning", Today(15), TimeSpan.FromHours(1)));
        await _dav.DeleteAsync(_calendarUrl, "existing.ics");
        await TickAtAsync(_clock.Now.AddMinutes(2));
        Assert.Equal(["Cancelled in the calendar: Already there (" + When(Today(12), Today(13)) + ")", "New in the calendar: Planning, " + When(Today(15), Today(16))],
            (await NoticesAsync()).Order(StringComparer.Ordinal));
        Assert.DoesNotContain(requests, r => r.Contains("sync-collection"));
    }

    [Fact]
    public async Task A_configured_room_the_bridge_cannot_join_is_named_while_the_others_run_and_is_linked_once_it_can_join()
    {
        // Invite-only rooms the bridge was not invited to: one by alias, one by room ID.
        var aliasName = $"closed{Guid.NewGuid():N}"[..14];
        var closedAlias = $"#{aliasName}:{_server.ServerName}";
        var closedRoom = (await C.PostAsync("/_matrix/client/v3/createRoom", new { preset = "private_chat", room_alias_name = aliasName }, _alice.AccessToken)).Str("room_id");
        var laterPublicRoom = (await C.PostAsync("/_matrix/client/v3/createRoom", new { preset = "private_chat" }, _alice.AccessToken)).Str("room_id");
        foreach (var room in new[] { closedAlias, _roomId, laterPublicRoom })
            _config.Calendars.Add(new CalendarBridgeConfig.LinkSection { Room = room, Url = _calendarUrl, Username = TestCalDavServer.User, Password = TestCalDavServer.Password });
        await _bridge.ApplyConfiguredLinksAsync(CancellationToken.None);

        lock (_problems)
        {
            Assert.Contains(_problems, p => p.Contains(closedAlias) && p.Contains($"invite {BotId}"));
            Assert.Contains(_problems, p => p.Contains(laterPublicRoom) && p.Contains($"invite {BotId}"));
        }
        // The room the bridge is in is linked all the same.
        Assert.StartsWith("Nothing in the next 7 days", await CommandAsync("!cal list"));

        // Invited, it joins and links the room at once.
        await C.PostAsync($"/_matrix/client/v3/rooms/{closedRoom}/invite", new { user_id = BotId }, _alice.AccessToken);
        await WaitForAsync(async () => (await C.GetAsync($"/_matrix/client/v3/rooms/{closedRoom}/state/m.room.member/{BotId}", _alice.AccessToken)).Body?["membership"]?.GetValue<string>() == "join",
            "the bridge joins the configured room it is invited to");
        Assert.StartsWith("Nothing in the next 7 days", await CommandAsync("!cal list", room: closedRoom));

        // A room that becomes joinable is linked at the next retry, one sync interval later.
        await C.PutAsync($"/_matrix/client/v3/rooms/{laterPublicRoom}/state/m.room.join_rules/", new { join_rule = "public" }, _alice.AccessToken);
        await TickAtAsync(_clock.Now.AddSeconds(30));
        Assert.Equal("leave", await MembershipAsync(laterPublicRoom));
        await TickAtAsync(_clock.Now.AddSeconds(31));
        Assert.Equal("join", await MembershipAsync(laterPublicRoom));
        Assert.StartsWith("Nothing in the next 7 days", await CommandAsync("!cal list", room: laterPublicRoom));
    }

    private async Task<string> MembershipAsync(string roomId) =>
        (await C.GetAsync($"/_matrix/client/v3/rooms/{roomId}/state/m.room.member/{BotId}", _alice.AccessToken)).Body?["membership"]?.GetValue<string>() ?? "leave";

    [Fact]
    public async Task Errors_name_the_side_that_failed_the_homeserver_or_the_calendar_server_and_the_room()
    {
        await LinkAsync();
        var start = _clock.Now;
        await _dav.PutAsync(_calendarUrl, "launch.ics", Event("launch", "Launch", Today(13), TimeSpan.FromHours(1)));

        // The homeserver down, the calendar up: the homeserver is blamed, not the calendar.
        await _server.StopAsync();
        await TickAtAsync(start.AddMinutes(2));
        string problem;
        lock (_problems)
            problem = Assert.Single(_problems);
        Assert.Contains(_roomId, problem);
        Assert.Contains($"homeserver {_server.BaseUrl}", problem);
        Assert.DoesNotContain("calendar server", problem);
        Assert.DoesNotContain("calendar sync failed", problem);

        // Back up: the change is announced once.
        await _server.StartAsync();
        await TickAtAsync(start.AddMinutes(4));
        await TickAtAsync(start.AddMinutes(6));
        Assert.Equal(["New in the calendar: Launch, " + When(Today(13), Today(14))], await NoticesAsync());

        // The calendar server down, the homeserver up: the calendar server is blamed, with the calendar's URL.
        await _dav.StopAsync();
        lock (_problems)
            _problems.Clear();
        await TickAtAsync(start.AddMinutes(8));
        lock (_problems)
            problem = Assert.Single(_problems);
        Assert.Contains(_roomId, problem);
        Assert.Contains($"calendar server", problem);
        Assert.Contains(_calendarUrl, problem);
        Assert.DoesNotContain("homeserver", problem);
        await _dav.StartAgainAsync();
    }

    [Fact]
    public async Task Linking_after_the_agenda_time_posts_no_late_agenda_and_a_later_agenda_time_fires_today()
    {
        _clock.Now = Today(10);
        await _dav.PutAsync(_calendarUrl, "early.ics", Event("early", "Early sync", Today(8, 30), TimeSpan.FromMinutes(30)));
        await _dav.PutAsync(_calendarUrl, "planning.ics", Event("planning", "Planning", Today(15), TimeSpan.FromHours(1), "LOCATION:Room 7\r\n"));
        await LinkAsync();
        await TickAtAsync(Today(10, 1));
        Assert.Empty(await NoticesAsync());

        Assert.Contains("14:00", await CommandAsync("!cal agenda 14:00"));
        await TickAtAsync(Today(13, 59));
        Assert.Empty(await NoticesAsync());
        await TickAtAsync(Today(14));
        await TickAtAsync(Today(14, 1));
        var agenda = Assert.Single(await NoticesAsync());
        Assert.Contains("15:00–16:00 Planning at Room 7", agenda);
        Assert.DoesNotContain("Early sync", agenda);
    }

    [Fact]
    public async Task Relinking_a_calendar_keeps_the_rooms_reminder_and_agenda_settings()
    {
        await LinkAsync();
        await CommandAsync("!cal lead 5");
        await CommandAsync("!cal agenda 09:30");
        await _dav.PutAsync(_calendarUrl, "early.ics", Event("early", "Early sync", Today(8), TimeSpan.FromMinutes(30)));
        await _dav.PutAsync(_calendarUrl, "lunch.ics", Event("lunch", "Lunch talk", Today(12), TimeSpan.FromHours(1)));

        _clock.Now = Today(10);
        var reply = await CommandAsync($"!cal link {_dav.WithCredentials(_calendarUrl)}");
        Assert.Contains("Reminders 5 min before events", reply);
        Assert.Contains("agenda daily at 09:30", reply);
        // Past today's agenda time: no late agenda of the morning's finished events.
        await TickAtAsync(Today(10, 1));
        Assert.Empty(await NoticesAsync());
        await TickAtAsync(Today(11, 50));
        Assert.Empty(await NoticesAsync());
        await TickAtAsync(Today(11, 55));
        Assert.Equal(["Reminder: Lunch talk starts in 5 min (" + When(Today(12), Today(13)) + ")"], await NoticesAsync());
    }

    [Fact]
    public async Task An_event_already_over_is_not_announced_and_announcements_name_the_location()
    {
        await LinkAsync();
        var start = _clock.Now;
        await TickAtAsync(start.AddMinutes(1));
        await _dav.PutAsync(_calendarUrl, "yesterday.ics", Event("yesterday", "Yesterday's retro", Today(10).AddDays(-1), TimeSpan.FromHours(1)));
        await _dav.PutAsync(_calendarUrl, "dawn.ics", Event("dawn", "Dawn call", Today(5), TimeSpan.FromHours(1)));
        await _dav.PutAsync(_calendarUrl, "planning.ics", Event("planning", "Planning", Today(14), TimeSpan.FromHours(1), "LOCATION:Room 7\r\n"));
        await TickAtAsync(start.AddMinutes(2));
        Assert.Equal(["New in the calendar: Planning, " + When(Today(14), Today(15)) + " at Room 7"], await NoticesAsync());

        await _dav.PutAsync(_calendarUrl, "planning.ics", Event("planning", "Planning", Today(14), TimeSpan.FromHours(1), "LOCATION:Room 9\r\nSEQUENCE:1\r\n"));
        await TickAtAsync(start.AddMinutes(4));
        Assert.Equal("Changed in the calendar: Planning, " + When(Today(14), Today(15)) + " at Room 9 (moved from Room 7)", (await NoticesAsync())[^1]);
        await _dav.DeleteAsync(_calendarUrl, "planning.ics");
        await TickAtAsync(start.AddMinutes(6));
        Assert.Equal("Cancelled in the calendar: Planning (" + When(Today(14), Today(15)) + " at Room 9)", (await NoticesAsync())[^1]);
        // Clearing out what is over is no news either.
        await _dav.DeleteAsync(_calendarUrl, "dawn.ics");
        await TickAtAsync(start.AddMinutes(8));
        Assert.Equal(3, (await NoticesAsync()).Count);
    }

    [Fact]
    public async Task Hourly_and_week_number_rules_are_expanded_in_listings_agendas_and_reminders()
    {
        await _dav.PutAsync(_calendarUrl, "checks.ics", Event("checks", "Server check", Today(10), TimeSpan.FromMinutes(10), "RRULE:FREQ=HOURLY;INTERVAL=2;COUNT=3\r\n"));
        // Yearly in one ISO week, on a day 8 to 29 days ahead clear of the weeks around new year.
        var reviewDay = Enumerable.Range(8, 22).Select(n => _day.AddDays(n)).First(d => System.Globalization.ISOWeek.GetWeekOfYear(d) is > 1 and < 52);
        var byWeek = $"RRULE:FREQ=YEARLY;BYWEEKNO={System.Globalization.ISOWeek.GetWeekOfYear(reviewDay)};BYDAY={reviewDay.DayOfWeek.ToString()[..2].ToUpperInvariant()}\r\n";
        var review = new DateTimeOffset(reviewDay.AddHours(9), TimeSpan.Zero);
        await _dav.PutAsync(_calendarUrl, "review.ics", Event("review", "Quarter review", review, TimeSpan.FromHours(1), byWeek));
        await LinkAsync();

        var list = await CommandAsync("!cal list 30");
        foreach (var hour in new[] { 10, 12, 14 })
            Assert.Contains(When(Today(hour), Today(hour, 10)) + " Server check", list);
        Assert.Contains(When(review, review.AddHours(1)) + " Quarter review", list);
        await TickAtAsync(Today(8));
        var agenda = Assert.Single(await NoticesAsync());
        Assert.Contains("10:00–10:10 Server check", agenda);
        Assert.Contains("14:00–14:10 Server check", agenda);
        await TickAtAsync(Today(13, 50));
        Assert.Equal("Reminder: Server check starts in 10 min (" + When(Today(14), Today(14, 10)) + ")", (await NoticesAsync())[^1]);
    }

    private async Task ForwardWithoutSyncAsync(System.Net.HttpListenerContext context, System.Collections.Concurrent.ConcurrentQueue<string> requests)
    {
        var body = await new StreamReader(context.Request.InputStream).ReadToEndAsync();
        var depth = context.Request.Headers["Depth"];
        requests.Enqueue($"{context.Request.HttpMethod} {depth}" + (body.Contains("sync-collection") ? " sync-collection" : ""));
        using var answer = await _dav.SendAsync(() =>
        {
            var forward = new HttpRequestMessage(new HttpMethod(context.Request.HttpMethod), _dav.BaseUrl + context.Request.Url!.PathAndQuery);
            if (body.Length > 0)
                forward.Content = new StringContent(body, System.Text.Encoding.UTF8, "application/xml");
            foreach (var header in new[] { "Authorization", "Depth" })
                if (context.Request.Headers[header] is { } value)
                    forward.Headers.TryAddWithoutValidation(header, value);
            return forward;
        });
        var text = System.Text.RegularExpressions.Regex.Replace(await answer.Content.ReadAsStringAsync(), "<sync-token>[^<]*</sync-token>", "");
        context.Response.StatusCode = (int)answer.StatusCode;
        context.Response.ContentType = answer.Content.Headers.ContentType?.ToString();
        var bytes = System.Text.Encoding.UTF8.GetBytes(text);
        await context.Response.OutputStream.WriteAsync(bytes);
        context.Response.Close();
    }

    private static string When(DateTimeOffset start, DateTimeOffset end) =>
        EventText.When(new Occurrence("x", ZoneTime.Utc(start), start, end, false, null!), TimeZoneInfo.Utc);

    public async Task DisposeAsync()
    {
        await _runtime.DisposeAsync();
        await _server.DisposeAsync();
        await _database.DisposeAsync();
        await _dav.DisposeAsync();
        _http.Dispose();
        Directory.Delete(_dir, recursive: true);
    }
}
