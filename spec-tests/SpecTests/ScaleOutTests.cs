using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>
/// README "Scaling out": a main process and two sync workers on one PostgreSQL database, linked by Redis, behind HAProxy
/// with contrib/haproxy/homeserver.cfg. Clients see one server: every message once and in one order whichever worker
/// they sync on, through a worker's death, the main process's death and a Redis outage.
/// </summary>
public sealed class ScaleOutTests(ScaleOutDeployment deployment) : IClassFixture<ScaleOutDeployment>
{
    private static string Send(string roomId, string txnId) =>
        $"/_matrix/client/v3/rooms/{Uri.EscapeDataString(roomId)}/send/m.room.message/{txnId}";

    /// <summary>A room created through the balancer with <paramref name="count"/> joined users.</summary>
    private async Task<(string RoomId, List<LoggedInUser> Users)> RoomWithAsync(int count)
    {
        var client = deployment.Client;
        var users = new List<LoggedInUser>();
        for (var i = 0; i < count; i++)
            users.Add(await client.RegisterAsync());
        var created = await client.PostAsync("/_matrix/client/v3/createRoom", new { preset = "public_chat" }, users[0].AccessToken);
        Assert.True(created.Status == 200, created.ToString());
        var roomId = created.Str("room_id");
        foreach (var user in users.Skip(1))
        {
            var joined = await client.PostAsync($"/_matrix/client/v3/join/{Uri.EscapeDataString(roomId)}", new { }, user.AccessToken);
            Assert.True(joined.Status == 200, joined.ToString());
        }
        return (roomId, users);
    }

    /// <summary>Another server (one process on SQLite) federating with the deployment through the balancer.</summary>
    private sealed class OtherServer(TestDatabase database, HomeserverProcess process) : IAsyncDisposable
    {
        public HomeserverProcess Process => process;
        public MatrixClient Client { get; } = new(process.BaseUrl, process.ServerName);

        public static async Task<OtherServer> StartAsync()
        {
            var database = await TestDatabase.CreateAsync("sqlite");
            var process = new HomeserverProcess(database.Yaml, FederationFixture.FederationYaml, addressAsServerName: true);
            await process.StartAsync();
            return new OtherServer(database, process);
        }

        /// <summary>A new user of this server, joined to a room of <paramref name="deployment"/> over federation.</summary>
        public async Task<LoggedInUser> JoinedUserAsync(ScaleOutDeployment deployment, string roomId)
        {
            var user = await Client.RegisterAsync();
            var joined = await Client.PostAsync($"/_matrix/client/v3/join/{Uri.EscapeDataString(roomId)}?server_name={deployment.ServerName}", new { },
                user.AccessToken);
            Assert.True(joined.Status == 200, joined.ToString());
            return user;
        }

        public async ValueTask DisposeAsync()
        {
            await process.DisposeAsync();
            await database.DisposeAsync();
        }
    }

    /// <summary>Sends through the balancer, retrying a failed attempt with the same transaction ID as clients do.</summary>
    private async Task<string> SendAsync(LoggedInUser user, string roomId, string body)
    {
        var txnId = Guid.NewGuid().ToString("N");
        while (true)
        {
            try
            {
                var sent = await deployment.Client.PutAsync(Send(roomId, txnId), new { msgtype = "m.text", body }, user.AccessToken);
                if (sent.Status == 200)
                    return sent.Str("event_id");
                // The balancer with no one to send it to, or a server asking to try again; anything else is a failure.
                Assert.True(sent.Status is 502 or 503 or 504, sent.ToString());
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException) { }
            await Task.Delay(200);
        }
    }

    private static void AssertSameSequence(IReadOnlyCollection<string> sent, params TimelineFollower[] followers)
    {
        var first = followers[0].Received;
        foreach (var follower in followers)
        {
            Assert.Equal(follower.Received.Count, follower.Received.Distinct().Count());
            Assert.Equal(first, follower.Received);
        }
        Assert.Equal(sent.Order(), first.Order());
    }

    /// <summary>
    /// Ten messages reach <paramref name="delivered"/>; <paramref name="process"/> is SIGKILLed and ten more are sent, none
    /// of which may get there meanwhile (only that process sends them; this can only fail, a slow machine never makes it
    /// pass); once it is back every message has got there, once and in order.
    /// </summary>
    private async Task NothingIsLostWhileItIsDownAsync(HomeserverProcess process, LoggedInUser sender, string roomId, Func<List<string>> delivered)
    {
        var sent = new List<string>();
        for (var i = 0; i < 10; i++)
            sent.Add(await SendAsync(sender, roomId, $"before {i}"));
        await Eventually.HoldsAsync(() => Task.FromResult(sent.All(delivered().Contains)), () => deployment.Output);
        await process.KillAsync();
        var queued = new List<string>();
        try
        {
            for (var i = 0; i < 10; i++)
                queued.Add(await SendAsync(sender, roomId, $"while it is down {i}"));
            await Task.Delay(TimeSpan.FromSeconds(2));
            Assert.DoesNotContain(delivered(), queued.Contains);
        }
        finally
        {
            await process.StartAsync();
        }
        sent.AddRange(queued);
        await Eventually.HoldsAsync(() => Task.FromResult(sent.All(delivered().Contains)), () => deployment.Output);
        Assert.Equal(sent, delivered().Distinct().ToList());
    }

    [Fact]
    public async Task Clients_on_different_sync_workers_see_every_message_once_in_one_order()
    {
        var (roomId, users) = await RoomWithAsync(4);
        await using var onSync1 = new TimelineFollower(deployment.ClientOf(deployment.Sync1), users[1].AccessToken, roomId);
        await using var onSync2 = new TimelineFollower(deployment.ClientOf(deployment.Sync2), users[2].AccessToken, roomId);
        await using var viaBalancer = new TimelineFollower(deployment.Client, users[3].AccessToken, roomId);
        foreach (var follower in new[] { onSync1, onSync2, viaBalancer })
            await follower.StartAsync();

        var sends = users.Take(3).Select(async (user, index) =>
        {
            var ids = new List<string>();
            for (var i = 0; i < 40; i++)
                ids.Add(await SendAsync(user, roomId, $"sender {index} message {i}"));
            return ids;
        });
        var sent = (await Task.WhenAll(sends)).SelectMany(ids => ids).ToList();
        foreach (var follower in new[] { onSync1, onSync2, viaBalancer })
            await follower.WaitForAsync(sent, () => deployment.Output);
        AssertSameSequence(sent, onSync1, onSync2, viaBalancer);
    }

    [Fact]
    public async Task A_sync_worker_killed_mid_load_loses_and_duplicates_nothing_its_clients_resume_on_the_other()
    {
        var (roomId, users) = await RoomWithAsync(5);
        var followers = users.Skip(1).Select(u => new TimelineFollower(deployment.Client, u.AccessToken, roomId)).ToList();
        // One user pinned to the worker that dies, so at least one client certainly has to move.
        followers.Add(new TimelineFollower(deployment.ClientOf(deployment.Sync1), users[1].AccessToken, roomId));
        foreach (var follower in followers)
            await follower.StartAsync();
        try
        {
            var sent = new List<string>();
            for (var i = 0; i < 30; i++)
                sent.Add(await SendAsync(users[0], roomId, $"before {i}"));
            await deployment.Sync1.KillAsync();
            for (var i = 0; i < 30; i++)
                sent.Add(await SendAsync(users[0], roomId, $"after {i}"));
            var survivors = followers.Take(followers.Count - 1).ToArray();
            foreach (var follower in survivors)
                await follower.WaitForAsync(sent, () => deployment.Output);
            AssertSameSequence(sent, survivors);

            // The restarted worker takes its clients back, from their tokens.
            await deployment.Sync1.StartAsync();
            sent.Add(await SendAsync(users[0], roomId, "after the restart"));
            foreach (var follower in followers)
                await follower.WaitForAsync(sent, () => deployment.Output);
            AssertSameSequence(sent, survivors);
        }
        finally
        {
            if (!deployment.Sync1.IsRunning)
                await deployment.Sync1.StartAsync();
            await Task.WhenAll(followers.Select(f => f.DisposeAsync().AsTask()));
        }
    }

    [Fact]
    public async Task Matrix_js_sdk_chat_through_the_balancer_survives_the_main_process_killed_halfway()
    {
        var output = await NodeScenario.RunAsync("chat-scenario.mjs", [deployment.Balancer.BaseUrl], TimeSpan.FromMinutes(4), async (line, stdin) =>
        {
            if (line != "RESTART")
                return;
            await deployment.Main.KillAsync();
            await deployment.Main.StartAsync();
            await stdin.WriteLineAsync("RESTARTED");
            await stdin.FlushAsync();
        });
        Assert.Contains("RESTART", output);
    }

    [Fact]
    public async Task Rust_crypto_clients_across_the_deployment_and_another_server_decrypt_everything()
    {
        await using var other = await OtherServer.StartAsync();
        await NodeScenario.RunAsync("e2ee-scenario.mjs", [deployment.Balancer.BaseUrl, other.Process.BaseUrl], TimeSpan.FromMinutes(4));
    }

    [Fact]
    public async Task The_federation_sender_sends_the_deployment_s_events_and_one_killed_mid_load_loses_none()
    {
        await using var other = await OtherServer.StartAsync();
        var (roomId, users) = await RoomWithAsync(1);
        var remote = await other.JoinedUserAsync(deployment, roomId);
        await using var follower = new TimelineFollower(other.Client, remote.AccessToken, roomId);
        await follower.StartAsync();

        await NothingIsLostWhileItIsDownAsync(deployment.FederationSender, users[0], roomId, () => follower.Received.ToList());
    }

    /// <summary>The sum of the process's samples of a metric (named as its samples are) whose labels include <paramref name="labels"/>.</summary>
    private static async Task<double> MetricAsync(HomeserverProcess process, string family, string sample, params (string Name, string Value)[] labels)
    {
        using var http = new HttpClient();
        var metrics = process.MetricsPort is { } port ? $"http://127.0.0.1:{port}" : process.BaseUrl;
        var families = PrometheusText.Parse(await http.GetStringAsync($"{metrics}/metrics"));
        return families.TryGetValue(family, out var found)
            ? found.Samples.Where(s => s.Name == sample && labels.All(l => s.Labels.GetValueOrDefault(l.Name) == l.Value)).Sum(s => s.Value)
            : 0;
    }

    /// <summary>How many requests of <paramref name="route"/> (a route template) the process has answered.</summary>
    private static Task<double> AnsweredAsync(HomeserverProcess process, string route) =>
        MetricAsync(process, "homeserver_http_request_duration_seconds", "homeserver_http_request_duration_seconds_count", ("route", route));

    [Fact]
    public async Task The_clean_ups_run_on_the_background_worker_and_not_on_the_main_process()
    {
        const string runs = "homeserver_background_job_runs_total";
        await Eventually.HoldsAsync(async () => await MetricAsync(deployment.Background, runs, runs, ("job", "maintenance")) >= 1,
            () => "a maintenance pass on the background worker\n" + deployment.Output);
        Assert.Equal(0, await MetricAsync(deployment.Main, runs, runs));
        Assert.Equal(0, await MetricAsync(deployment.FederationReader, runs, runs));
    }

    [Fact]
    public async Task Another_server_joins_and_backfills_through_the_federation_reader_and_the_main_process_stands_in_while_it_is_down()
    {
        await using var other = await OtherServer.StartAsync();
        var otherClient = other.Client;
        var (roomId, users) = await RoomWithAsync(1);
        var history = new List<string>();
        for (var i = 0; i < 5; i++)
            history.Add(await SendAsync(users[0], roomId, $"history {i}"));
        const string makeJoin = "/_matrix/federation/v1/make_join/{roomId}/{userId}";
        const string backfill = "/_matrix/federation/v1/backfill/{roomId}";
        string Join(string room) => $"/_matrix/client/v3/join/{Uri.EscapeDataString(room)}?server_name={deployment.ServerName}";

        var (mainJoins, mainBackfills) = (await AnsweredAsync(deployment.Main, makeJoin), await AnsweredAsync(deployment.Main, backfill));
        var remote = await otherClient.RegisterAsync();
        var joined = await otherClient.PostAsync(Join(roomId), new { }, remote.AccessToken);
        Assert.True(joined.Status == 200, joined.ToString());
        // The history from before the join comes by backfill (the reader's), the join itself by send_join (the main process's).
        await Eventually.HoldsAsync(async () =>
        {
            var page = await otherClient.GetAsync($"/_matrix/client/v3/rooms/{Uri.EscapeDataString(roomId)}/messages?dir=b&limit=50", remote.AccessToken);
            var seen = page.Body?["chunk"]?.AsArray().Select(e => (string?)e?["event_id"]).ToHashSet() ?? [];
            return history.All(seen.Contains);
        }, () => "the history backfilled by the other server\n" + deployment.Output);
        Assert.True(await AnsweredAsync(deployment.FederationReader, makeJoin) >= 1, deployment.Output);
        Assert.True(await AnsweredAsync(deployment.FederationReader, backfill) >= 1, deployment.Output);
        Assert.Equal(mainJoins, await AnsweredAsync(deployment.Main, makeJoin));
        Assert.Equal(mainBackfills, await AnsweredAsync(deployment.Main, backfill));
        // Writes are the main process's: a transaction sent to the reader by mistake is refused, unread.
        var misrouted = await deployment.ClientOf(deployment.FederationReader).PutAsync("/_matrix/federation/v1/send/1", new { pdus = Array.Empty<object>() });
        Assert.Equal(404, misrouted.Status);
        Assert.Equal("M_UNRECOGNIZED", misrouted.Errcode);

        // A room the other server is not in yet: joining it takes a make_join, which the main process answers meanwhile.
        var (secondRoomId, _) = await RoomWithAsync(1);
        await deployment.FederationReader.KillAsync();
        try
        {
            await Eventually.HoldsAsync(async () => (await otherClient.PostAsync(Join(secondRoomId), new { }, remote.AccessToken)).Status == 200,
                () => "a join while the federation reader is down\n" + deployment.Output);
            Assert.True(await AnsweredAsync(deployment.Main, makeJoin) > mainJoins, deployment.Output);
        }
        finally
        {
            await deployment.FederationReader.StartAsync();
        }
    }

    [Fact]
    public async Task The_federation_reader_serves_an_erased_user_s_events_redacted_once_the_main_process_erased_them()
    {
        await using var remote = new FakeRemoteServer();
        var (roomId, users) = await RoomWithAsync(2);
        var message = await SendAsync(users[1], roomId, "words to be erased");
        await remote.JoinAsync(deployment.Main, roomId, "fake");
        var path = $"/_matrix/federation/v1/event/{Uri.EscapeDataString(message)}";
        var before = await remote.SendAsync(deployment.FederationReader, HttpMethod.Get, path);
        Assert.True(before.Body?["pdus"]?[0]?["content"]?["body"]?.GetValue<string>() == "words to be erased", before.ToString());

        var erased = await deployment.Client.WithPasswordAuthAsync(HttpMethod.Post, "/_matrix/client/v3/account/deactivate",
            new System.Text.Json.Nodes.JsonObject { ["erase"] = true }, users[1]);
        Assert.True(erased.Status == 200, erased.ToString());
        await Eventually.HoldsAsync(async () =>
            (await remote.SendAsync(deployment.FederationReader, HttpMethod.Get, path)).Body?["pdus"]?[0]?["content"] is System.Text.Json.Nodes.JsonObject { Count: 0 },
            () => "the reader serves the erased user's event redacted\n" + deployment.Output);
    }

    [Fact]
    public async Task The_pusher_delivers_the_deployment_s_notifications_and_one_killed_mid_load_loses_none()
    {
        var notified = new System.Collections.Concurrent.ConcurrentQueue<string>();
        await using var gateway = new LoopbackListener(async context =>
        {
            var body = System.Text.Json.Nodes.JsonNode.Parse(await new StreamReader(context.Request.InputStream).ReadToEndAsync())!;
            if ((string?)body["notification"]?["event_id"] is { Length: > 0 } eventId)
                notified.Enqueue(eventId);
            context.Response.ContentType = "application/json";
            await context.Response.OutputStream.WriteAsync("""{"rejected":[]}"""u8.ToArray());
            context.Response.Close();
        }, address: "127.0.0.2");
        var (roomId, users) = await RoomWithAsync(2);
        var pusher = await deployment.Client.PostAsync("/_matrix/client/v3/pushers/set", new
        {
            kind = "http", app_id = "com.example.app", pushkey = "scale-out", app_display_name = "Example", device_display_name = "Phone",
            lang = "en", data = new { url = $"{gateway.BaseUrl}/_matrix/push/v1/notify" },
        }, users[1].AccessToken);
        Assert.Equal(200, pusher.Status);

        await NothingIsLostWhileItIsDownAsync(deployment.Pusher, users[0], roomId, () => notified.ToList());
    }

    [Fact]
    public async Task The_media_worker_takes_uploads_and_downloads_through_the_balancer_and_the_main_process_serves_the_same_files()
    {
        var user = await deployment.Client.RegisterAsync();
        var viaBalancer = new MediaClient(deployment.Balancer.BaseUrl);
        var image = TestImages.Png(64, 48);
        var uploaded = await viaBalancer.UploadAsync(image, "image/png", user.AccessToken, "picture.png");
        Assert.True(uploaded.Status == 200, uploaded.ToString());
        var path = MediaClient.PathOf(uploaded.Str("content_uri"));

        // The upload went to the media worker, and the main process (which federation asks for media) has it too.
        foreach (var client in new[] { viaBalancer, new MediaClient(deployment.Media.BaseUrl), new MediaClient(deployment.Main.BaseUrl) })
        {
            using var download = await client.GetAsync($"/_matrix/client/v1/media/download/{path}", user.AccessToken);
            Assert.Equal(200, (int)download.StatusCode);
            Assert.Equal(image, await download.Content.ReadAsByteArrayAsync());
        }
        using var thumbnail = await viaBalancer.GetAsync($"/_matrix/client/v1/media/thumbnail/{path}?width=32&height=32&method=scale", user.AccessToken);
        Assert.Equal(200, (int)thumbnail.StatusCode);
        Assert.Equal("image/png", thumbnail.Content.Headers.ContentType?.MediaType);

        // An ID created on the media worker, uploaded into later: a download waiting on it sees the upload.
        var created = await deployment.ClientOf(deployment.Media).PostAsync("/_matrix/media/v1/create", new { }, user.AccessToken);
        Assert.Equal(200, created.Status);
        var later = MediaClient.PathOf(created.Str("content_uri"));
        var waiting = new MediaClient(deployment.Main.BaseUrl).GetAsync($"/_matrix/client/v1/media/download/{later}?timeout_ms=20000", user.AccessToken);
        var put = await viaBalancer.UploadAsync(MediaClient.Content("later"u8.ToArray(), "text/plain"), user.AccessToken,
            path: $"/_matrix/media/v3/upload/{later}", method: HttpMethod.Put);
        Assert.True(put.Status == 200, put.ToString());
        using var arrived = await waiting;
        Assert.Equal("later", await arrived.Content.ReadAsStringAsync());

        var misrouted = await deployment.ClientOf(deployment.Media).GetAsync("/_matrix/client/v3/sync?timeout=0", user.AccessToken);
        Assert.Equal("M_UNRECOGNIZED", misrouted.Errcode);
    }

    [Fact]
    public async Task The_application_service_sender_sends_its_service_s_events_and_one_killed_mid_load_loses_none()
    {
        var client = deployment.Client;
        var ghost = MatrixClient.UniqueName("chat_");
        var registered = await client.PostAsync("/_matrix/client/v3/register", new { type = "m.login.application_service", username = ghost },
            deployment.AppService.AsToken);
        Assert.True(registered.Status == 200, registered.ToString());
        var ghostToken = registered.Str("access_token");
        var created = await client.PostAsync("/_matrix/client/v3/createRoom", new { }, ghostToken);
        Assert.Equal(200, created.Status);
        var roomId = created.Str("room_id");
        var ghostUser = new LoggedInUser(registered.Str("user_id"), ghostToken, registered.Str("device_id"), "", ghost);

        List<string> Transmitted()
        {
            lock (deployment.AppService.AcceptedEvents)
                return deployment.AppService.AcceptedEvents.Where(e => (string?)e["room_id"] == roomId && (string?)e["type"] == "m.room.message")
                    .Select(e => (string)e["event_id"]!).ToList();
        }
        await NothingIsLostWhileItIsDownAsync(deployment.AppServiceSender, ghostUser, roomId, Transmitted);
    }

    [Fact]
    public async Task With_Redis_away_workers_still_deliver_and_honour_a_logout_and_pick_up_again_when_it_is_back()
    {
        var (roomId, users) = await RoomWithAsync(3);
        await using var onSync1 = new TimelineFollower(deployment.ClientOf(deployment.Sync1), users[1].AccessToken, roomId);
        await using var onSync2 = new TimelineFollower(deployment.ClientOf(deployment.Sync2), users[2].AccessToken, roomId);
        await onSync1.StartAsync();
        await onSync2.StartAsync();
        var leaving = await deployment.Client.LoginAsync(users[2].UserId, users[2].Password);
        var leavingToken = leaving.Str("access_token");
        Assert.Equal(200, (await deployment.ClientOf(deployment.Sync1).GetAsync("/_matrix/client/v3/account/whoami", leavingToken)).Status);

        await deployment.Redis.StopAsync();
        var sent = new List<string>();
        try
        {
            for (var i = 0; i < 10; i++)
                sent.Add(await SendAsync(users[0], roomId, $"without redis {i}"));
            await onSync1.WaitForAsync(sent, () => deployment.Output);
            await onSync2.WaitForAsync(sent, () => deployment.Output);
            Assert.Equal(200, (await deployment.Client.PostAsync("/_matrix/client/v3/logout", new { }, leavingToken)).Status);
            await Eventually.HoldsAsync(async () =>
                (await deployment.ClientOf(deployment.Sync1).GetAsync("/_matrix/client/v3/account/whoami", leavingToken)).Status == 401,
                "the worker refuses a token logged out while Redis was away");
        }
        finally
        {
            await deployment.Redis.RestartAsync();
        }
        for (var i = 0; i < 10; i++)
            sent.Add(await SendAsync(users[0], roomId, $"with redis again {i}"));
        await onSync1.WaitForAsync(sent, () => deployment.Output);
        await onSync2.WaitForAsync(sent, () => deployment.Output);
        AssertSameSequence(sent, onSync1, onSync2);
    }

    [Fact]
    public async Task Workers_follow_the_main_process_logouts_typing_and_presence()
    {
        var (roomId, users) = await RoomWithAsync(2);
        var worker = deployment.ClientOf(deployment.Sync2);
        var typed = await deployment.Client.PutAsync($"/_matrix/client/v3/rooms/{Uri.EscapeDataString(roomId)}/typing/{Uri.EscapeDataString(users[0].UserId)}",
            new { typing = true, timeout = 60000 }, users[0].AccessToken);
        Assert.Equal(200, typed.Status);
        await Eventually.HoldsAsync(async () =>
        {
            var sync = await worker.GetAsync("/_matrix/client/v3/sync?timeout=0", users[1].AccessToken);
            var ephemeral = sync.Body!["rooms"]?["join"]?[roomId]?["ephemeral"]?["events"]?.AsArray() ?? [];
            return ephemeral.Any(e => (string?)e!["type"] == "m.typing" && e["content"]!["user_ids"]!.AsArray().Any(u => (string?)u == users[0].UserId));
        }, "the worker's sync shows who types");

        // The worker passes its syncs' activity to the main process, which writes presence.
        await worker.GetAsync("/_matrix/client/v3/sync?timeout=0&set_presence=unavailable", users[1].AccessToken);
        await Eventually.HoldsAsync(async () =>
            (await deployment.Client.GetAsync($"/_matrix/client/v3/presence/{Uri.EscapeDataString(users[1].UserId)}/status", users[0].AccessToken))
                .Body?["presence"]?.GetValue<string>() == "unavailable", "presence set by a worker's sync");

        Assert.Equal(200, (await worker.GetAsync("/_matrix/client/v3/account/whoami", users[1].AccessToken)).Status);
        Assert.Equal(200, (await deployment.Client.PostAsync("/_matrix/client/v3/logout", new { }, users[1].AccessToken)).Status);
        await Eventually.HoldsAsync(async () => (await worker.GetAsync("/_matrix/client/v3/account/whoami", users[1].AccessToken)).Status == 401,
            "the worker refuses the logged-out token");
    }

    [Fact]
    public async Task A_sync_worker_bundles_an_edit_made_after_the_event_it_already_followed()
    {
        var (roomId, users) = await RoomWithAsync(1);
        var message = await SendAsync(users[0], roomId, "first words");
        var edit = await deployment.Client.PutAsync(Send(roomId, Guid.NewGuid().ToString("N")), new System.Text.Json.Nodes.JsonObject
        {
            ["msgtype"] = "m.text", ["body"] = "* second words",
            ["m.new_content"] = new System.Text.Json.Nodes.JsonObject { ["msgtype"] = "m.text", ["body"] = "second words" },
            ["m.relates_to"] = new System.Text.Json.Nodes.JsonObject { ["rel_type"] = "m.replace", ["event_id"] = message },
        }, users[0].AccessToken);
        Assert.True(edit.Status == 200, edit.ToString());
        var worker = deployment.ClientOf(deployment.Sync1);
        await Eventually.HoldsAsync(async () =>
        {
            var sync = await worker.GetAsync("/_matrix/client/v3/sync?timeout=0", users[0].AccessToken);
            var timeline = sync.Body?["rooms"]?["join"]?[roomId]?["timeline"]?["events"]?.AsArray() ?? [];
            var original = timeline.FirstOrDefault(e => (string?)e?["event_id"] == message);
            return (string?)original?["unsigned"]?["m.relations"]?["m.replace"]?["event_id"] == edit.Str("event_id");
        }, () => "the edit bundled with the message in a sync on the worker\n" + deployment.Output);
    }

    private const string SendRoute = "/_matrix/client/v3/rooms/{roomId}/send/{eventType}/{txnId}";

    /// <summary>
    /// A room (with <paramref name="count"/> users) whose sends the balancer routes to <paramref name="writer"/>, and the
    /// message that found out.
    /// </summary>
    private async Task<(string RoomId, List<LoggedInUser> Users, string Probe)> RoomWrittenByAsync(HomeserverProcess writer, int count)
    {
        for (var attempt = 0; attempt < 30; attempt++)
        {
            var (roomId, users) = await RoomWithAsync(count);
            var before = await AnsweredAsync(writer, SendRoute);
            var probe = await SendAsync(users[0], roomId, "which writer?");
            if (await AnsweredAsync(writer, SendRoute) > before)
                return (roomId, users, probe);
        }
        throw new InvalidOperationException($"no room of 30 went to the writer\n{deployment.Output}");
    }

    [Fact]
    public async Task Each_room_s_sends_go_to_one_event_writer_and_clients_on_both_sync_workers_see_both_writers_messages_once_in_order()
    {
        var first = await RoomWrittenByAsync(deployment.EventWriter1, 3);
        var second = await RoomWrittenByAsync(deployment.EventWriter2, 3);
        var followers = new List<TimelineFollower>();
        foreach (var (roomId, users, _) in new[] { first, second })
        {
            followers.Add(new TimelineFollower(deployment.ClientOf(deployment.Sync1), users[1].AccessToken, roomId));
            followers.Add(new TimelineFollower(deployment.ClientOf(deployment.Sync2), users[2].AccessToken, roomId));
        }
        foreach (var follower in followers)
            await follower.StartAsync();
        try
        {
            var mainSends = await AnsweredAsync(deployment.Main, SendRoute);
            // Both writers at once, three senders in each room, so their positions interleave.
            var sends = new[] { first, second }.SelectMany(room => room.Users.Select(async (user, index) =>
            {
                var ids = new List<string>();
                for (var i = 0; i < 20; i++)
                    ids.Add(await SendAsync(user, room.RoomId, $"sender {index} message {i}"));
                return (room.RoomId, ids);
            }));
            var sent = await Task.WhenAll(sends);
            foreach (var (room, pair) in new[] { (first, followers[..2]), (second, followers[2..]) })
            {
                List<string> ids = [room.Probe, .. sent.Where(s => s.RoomId == room.RoomId).SelectMany(s => s.ids)];
                foreach (var follower in pair)
                    await follower.WaitForAsync(ids, () => deployment.Output);
                AssertSameSequence(ids, [.. pair]);
            }
            Assert.Equal(mainSends, await AnsweredAsync(deployment.Main, SendRoute));
        }
        finally
        {
            await Task.WhenAll(followers.Select(f => f.DisposeAsync().AsTask()));
        }
    }

    [Fact]
    public async Task An_event_writer_killed_mid_load_loses_nothing_its_rooms_go_to_the_other_and_come_back_when_it_restarts()
    {
        var (roomId, users, probe) = await RoomWrittenByAsync(deployment.EventWriter1, 3);
        await using var onSync1 = new TimelineFollower(deployment.ClientOf(deployment.Sync1), users[1].AccessToken, roomId);
        await using var onSync2 = new TimelineFollower(deployment.ClientOf(deployment.Sync2), users[2].AccessToken, roomId);
        await onSync1.StartAsync();
        await onSync2.StartAsync();
        var sent = new List<string> { probe };
        try
        {
            var load = Task.Run(async () =>
            {
                var ids = new List<string>();
                for (var i = 0; i < 40; i++)
                    ids.Add(await SendAsync(users[0], roomId, $"message {i}"));
                return ids;
            });
            await Eventually.HoldsAsync(async () => await AnsweredAsync(deployment.EventWriter1, SendRoute) >= 10, () => deployment.Output);
            var takenOver = await AnsweredAsync(deployment.EventWriter2, SendRoute);
            await deployment.EventWriter1.KillAsync();
            sent.AddRange(await load);
            Assert.True(await AnsweredAsync(deployment.EventWriter2, SendRoute) > takenOver, "the other writer took the room\n" + deployment.Output);
            foreach (var follower in new[] { onSync1, onSync2 })
                await follower.WaitForAsync(sent, () => deployment.Output);
            AssertSameSequence(sent, onSync1, onSync2);

            // Restarted, it takes its rooms back (once the balancer sees it up).
            await deployment.EventWriter1.StartAsync();
            await Eventually.HoldsAsync(async () =>
            {
                sent.Add(await SendAsync(users[0], roomId, "after the restart"));
                return await AnsweredAsync(deployment.EventWriter1, SendRoute) >= 1;
            }, () => "a send answered by the restarted writer\n" + deployment.Output);
            foreach (var follower in new[] { onSync1, onSync2 })
                await follower.WaitForAsync(sent, () => deployment.Output);
            AssertSameSequence(sent, onSync1, onSync2);
        }
        finally
        {
            if (!deployment.EventWriter1.IsRunning)
                await deployment.EventWriter1.StartAsync();
        }
    }

    [Fact]
    public async Task Sends_to_one_room_through_two_writers_at_once_keep_one_line_of_history()
    {
        var (roomId, users) = await RoomWithAsync(2);
        await using var follower = new TimelineFollower(deployment.ClientOf(deployment.Sync1), users[1].AccessToken, roomId);
        await follower.StartAsync();
        // Past the balancer: the main process and both writers write to the room at once, each from its own snapshot of it.
        var writers = new[] { deployment.Main, deployment.EventWriter1, deployment.EventWriter2 };
        var sends = writers.Select(async writer =>
        {
            var client = deployment.ClientOf(writer);
            var ids = new List<string>();
            for (var i = 0; i < 15; i++)
            {
                var sent = await client.PutAsync(Send(roomId, Guid.NewGuid().ToString("N")), new { msgtype = "m.text", body = $"{i}" }, users[0].AccessToken);
                Assert.True(sent.Status == 200, sent.ToString());
                ids.Add(sent.Str("event_id"));
            }
            return ids;
        });
        var all = (await Task.WhenAll(sends)).SelectMany(ids => ids).ToList();
        await follower.WaitForAsync(all, () => deployment.Output);
        AssertSameSequence(all, follower);
        // Each event was made on top of the one before: one forward extremity, so the next event has one prev event.
        var last = await deployment.Client.PutAsync(Send(roomId, Guid.NewGuid().ToString("N")), new { msgtype = "m.text", body = "last" }, users[0].AccessToken);
        await using var remote = new FakeRemoteServer();
        await remote.JoinAsync(deployment.Main, roomId, "fake");
        var fetched = await remote.SendAsync(deployment.Main, HttpMethod.Get, $"/_matrix/federation/v1/event/{Uri.EscapeDataString(last.Str("event_id"))}");
        Assert.True(fetched.Body?["pdus"]?[0]?["prev_events"]?.AsArray().Count == 1, fetched.ToString());
    }

    [Fact]
    public async Task Another_server_s_transactions_go_to_the_event_writers_and_their_messages_typing_and_to_device_messages_reach_clients()
    {
        await using var other = await OtherServer.StartAsync();
        var otherClient = other.Client;
        var (roomId, users) = await RoomWithAsync(1);
        var local = users[0];
        var remote = await other.JoinedUserAsync(deployment, roomId);
        const string transaction = "/_matrix/federation/v1/send/{txnId}";
        async Task<double> WritersAnsweredAsync() =>
            await AnsweredAsync(deployment.EventWriter1, transaction) + await AnsweredAsync(deployment.EventWriter2, transaction);
        var (mainBefore, writersBefore) = (await AnsweredAsync(deployment.Main, transaction), await WritersAnsweredAsync());
        await using var follower = new TimelineFollower(deployment.ClientOf(deployment.Sync1), local.AccessToken, roomId);
        await follower.StartAsync();

        var sent = new List<string>();
        for (var i = 0; i < 10; i++)
        {
            var message = await otherClient.PutAsync(Send(roomId, $"remote{i}"), new { msgtype = "m.text", body = $"from afar {i}" }, remote.AccessToken);
            Assert.True(message.Status == 200, message.ToString());
            sent.Add(message.Str("event_id"));
        }
        await follower.WaitForAsync(sent, () => deployment.Output);
        Assert.Equal(sent, follower.Received.Where(sent.Contains).ToList());

        // The EDUs: queued by the writer that received them, applied by the main process, seen on the other sync worker.
        var typed = await otherClient.PutAsync($"/_matrix/client/v3/rooms/{Uri.EscapeDataString(roomId)}/typing/{Uri.EscapeDataString(remote.UserId)}",
            new { typing = true, timeout = 30000 }, remote.AccessToken);
        Assert.Equal(200, typed.Status);
        // A device of its own: the follower's syncs acknowledge its device's messages.
        var device = await deployment.Client.LoginAsync(local.UserId, local.Password);
        var toDevice = new { messages = new Dictionary<string, object> { [local.UserId] = new Dictionary<string, object> { [device.Str("device_id")] = new { secret = "over federation" } } } };
        Assert.Equal(200, (await otherClient.PutAsync("/_matrix/client/v3/sendToDevice/org.example.test/remote1", toDevice, remote.AccessToken)).Status);
        var worker = deployment.ClientOf(deployment.Sync2);
        var (sawTyping, sawMessage) = (false, false);
        await Eventually.HoldsAsync(async () =>
        {
            var sync = (await worker.GetAsync("/_matrix/client/v3/sync?timeout=0", device.Str("access_token"))).Body;
            var ephemeral = sync?["rooms"]?["join"]?[roomId]?["ephemeral"]?["events"]?.AsArray() ?? [];
            sawTyping |= ephemeral.Any(e => (string?)e!["type"] == "m.typing" && e["content"]!["user_ids"]!.AsArray().Any(u => (string?)u == remote.UserId));
            sawMessage |= (sync?["to_device"]?["events"]?.AsArray() ?? []).Any(e => (string?)e!["sender"] == remote.UserId
                && (string?)e["type"] == "org.example.test" && (string?)e["content"]?["secret"] == "over federation");
            return sawTyping && sawMessage;
        }, () => $"typing {sawTyping}, to-device message {sawMessage}\n{deployment.Output}");

        Assert.True(await WritersAnsweredAsync() > writersBefore, deployment.Output);
        Assert.Equal(mainBefore, await AnsweredAsync(deployment.Main, transaction));
    }

    [Fact]
    public async Task A_request_routed_to_a_sync_worker_by_mistake_is_refused_as_unrecognized()
    {
        var user = await deployment.Client.RegisterAsync();
        var misrouted = await deployment.ClientOf(deployment.Sync1).PostAsync("/_matrix/client/v3/createRoom", new { }, user.AccessToken);
        Assert.Equal(404, misrouted.Status);
        Assert.Equal("M_UNRECOGNIZED", misrouted.Errcode);
        Assert.Equal(200, (await deployment.ClientOf(deployment.Sync1).GetAsync("/_matrix/client/v3/sync?timeout=0", user.AccessToken)).Status);
    }
}
