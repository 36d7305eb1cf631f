using System.Text.Json.Nodes;

namespace Matrix.SpecTests.Harness;

/// <summary>
/// A client that long-polls <c>/sync</c> as a real one does, recording the <c>m.room.message</c> event IDs of one room
/// in the order its syncs bring them (duplicates included, so a test can see them). Connection failures and 5xx
/// answers (a process behind the balancer just died) are retried with the same token after a moment, as clients do.
/// </summary>
public sealed class TimelineFollower : IAsyncDisposable
{
    private readonly MatrixClient _client;
    private readonly string _token;
    private readonly string _roomId;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<string> _received = [];
    private Task _loop = Task.CompletedTask;

    public TimelineFollower(MatrixClient client, string token, string roomId)
    {
        _client = client;
        _token = token;
        _roomId = roomId;
    }

    private const string Filter = """{"room":{"timeline":{"limit":1000}}}""";

    public int Retries { get; private set; }

    public IReadOnlyList<string> Received
    {
        get { lock (_received) return _received.ToList(); }
    }

    /// <summary>Makes an initial sync (its timeline counts too) and follows from there in the background.</summary>
    public async Task StartAsync()
    {
        var since = await SyncAsync(null, 0);
        _loop = Task.Run(async () =>
        {
            while (!_stop.IsCancellationRequested)
                since = await SyncAsync(since, 5_000);
        });
    }

    private async Task<string> SyncAsync(string? since, int timeoutMs)
    {
        while (true)
        {
            try
            {
                // A timeline limit no test reaches: a limited timeline would leave out events the test then misses.
                var path = $"/_matrix/client/v3/sync?timeout={timeoutMs}&filter={Uri.EscapeDataString(Filter)}"
                    + (since is null ? "" : $"&since={Uri.EscapeDataString(since)}");
                var response = await _client.GetAsync(path, _token);
                if (response.Status == 200)
                {
                    var events = response.Body!["rooms"]?["join"]?[_roomId]?["timeline"]?["events"] as JsonArray ?? [];
                    lock (_received)
                        _received.AddRange(events.Where(e => (string?)e!["type"] == "m.room.message").Select(e => (string)e!["event_id"]!));
                    return response.Str("next_batch");
                }
                Assert.True(response.Status >= 500, $"sync answered {response}");
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException) { }
            if (_stop.IsCancellationRequested)
                return since ?? "";
            Retries++;
            await Task.Delay(200);
        }
    }

    /// <summary>Waits until every one of <paramref name="eventIds"/> arrived, as long as syncs keep bringing something within a minute.</summary>
    public async Task WaitForAsync(IReadOnlyCollection<string> eventIds, Func<string> diagnostics)
    {
        var (count, progressAt) = (-1, DateTime.UtcNow);
        while (!eventIds.All(Received.Contains))
        {
            if (_loop.IsFaulted)
                await _loop;
            if (Received.Count != count)
                (count, progressAt) = (Received.Count, DateTime.UtcNow);
            Assert.True(DateTime.UtcNow - progressAt < TimeSpan.FromMinutes(1),
                $"no new event for a minute; have {Received.Count} of {eventIds.Count}\n{diagnostics()}");
            await Task.Delay(50);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        try
        {
            await _loop;
        }
        catch (OperationCanceledException) { }
    }
}
