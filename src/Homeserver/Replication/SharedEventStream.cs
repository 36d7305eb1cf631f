using Matrix.Homeserver.Config;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Replication;

/// <summary>
/// The events stream of a deployment with several event writers (README "Scaling out"). Each writer takes positions
/// from one PostgreSQL sequence and says, whenever it moves and every second, up to where it has committed everything of
/// its own; every process reads up to the lowest of those (<see cref="StreamPositions"/>). A writer with nothing in flight
/// moves up to another's position when it hears it, so an idle writer holds no one back. A writer that stays behind
/// and has no connection to the database left has died with its transactions rolled back: it is passed over until
/// it starts again. Each writer also records its position every second, and every process reads them, so that they go
/// on (a second late) while Redis is away.
/// </summary>
public sealed class SharedEventStream(HomeserverConfig config, Database db, StreamPositions streams, PositionAnnouncer announcer,
    ReplicationPositionStore positions, ILogger<SharedEventStream> logger) : BackgroundService
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);
    /// <summary>Seconds a writer may stand behind the others before its connections are looked for.</summary>
    private const int PatienceSeconds = 3;
    private readonly Dictionary<string, (long Position, int Seconds)> _behind = new(StringComparer.Ordinal);

    /// <summary>What an event writer's connections are called in PostgreSQL (null: not an event writer of a shared stream).</summary>
    public static string? ApplicationName(HomeserverConfig config) =>
        config.Worker.SharesEvents && config.Worker.EventWriterName is { } writer ? WriterApplicationName(writer) : null;

    private static string WriterApplicationName(string writer) => $"matrix-homeserver event writer {writer}";

    /// <summary>
    /// Shares the events stream before anything takes a position: a writer starts after every position the sequence
    /// handed out, readers from the position last recorded as visible.
    /// </summary>
    public override async Task StartAsync(CancellationToken ct)
    {
        var self = config.Worker.EventWriterName;
        var recorded = (await positions.ReadAsync(ct)).GetValueOrDefault(StreamPositions.SharedStream);
        long? own = self is null ? null : await StreamPositions.StartSharedAsync(db, ct);
        streams.ShareAmongWriters(config.Worker.EventWriters, self, recorded, own);
        if (self is not null)
            streams.OwnPositionMoved += announcer.AnnounceOwn;
        await base.StartAsync(ct);
    }

    protected override async Task ExecuteAsync(CancellationToken ct)
    {
        using var timer = new PeriodicTimer(Interval);
        while (await timer.WaitForNextTickAsync(ct))
            try
            {
                await ExchangeThroughTheDatabaseAsync(ct);
                announcer.AnnounceOwn();
                await PassOverTheGoneAsync(ct);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logger.LogWarning(e, "Checking the event writers failed");
            }
    }

    /// <summary>
    /// Records where this writer stands and reads where the others do: what the processes go by while Redis is away
    /// (or a message was lost), a second late.
    /// </summary>
    private async Task ExchangeThroughTheDatabaseAsync(CancellationToken ct)
    {
        if (config.Worker.EventWriterName is { } self)
            await positions.RecordEventWriterAsync(self, streams.OwnSharedPosition(), ct);
        foreach (var (writer, position) in await positions.ReadEventWritersAsync(ct))
            if (writer != config.Worker.EventWriterName)
                streams.FollowWriter(writer, position, live: false);
    }

    private async Task PassOverTheGoneAsync(CancellationToken ct)
    {
        var behind = streams.WritersBehind();
        foreach (var writer in _behind.Keys.Except(behind.Select(b => b.Writer)).ToList())
            _behind.Remove(writer);
        foreach (var (writer, position) in behind)
        {
            var seconds = _behind.TryGetValue(writer, out var was) && was.Position == position ? was.Seconds + 1 : 1;
            _behind[writer] = (position, seconds);
            if (seconds < PatienceSeconds)
                continue;
            var connected = await db.ReadAsync(s => s.ExecuteScalarAsync<long>(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = @name",
                new { name = WriterApplicationName(writer) }), ct);
            if (connected > 0)
                continue;
            logger.LogWarning("Event writer {Writer} is gone (no connection to the database): passing over it until it is back", writer);
            streams.WriterGone(writer, position);
            _behind.Remove(writer);
        }
    }
}
