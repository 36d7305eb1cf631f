using System.Text.Json.Nodes;
using System.Threading.Channels;
using Matrix.Federation.Events;
using Matrix.Federation.Identifiers;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Rooms;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Presence;

/// <summary>The joins of rooms, handed to <see cref="PresenceIntroductions"/> (a listener of its own, as the spine's listeners cannot depend on services that read rooms).</summary>
public sealed class RoomJoins(HomeserverConfig config) : IEventListener
{
    private readonly Channel<(Pdu Join, RoomSnapshot Room)> _joins = Channel.CreateUnbounded<(Pdu, RoomSnapshot)>(new UnboundedChannelOptions { SingleReader = true });

    public ChannelReader<(Pdu Join, RoomSnapshot Room)> Joins => _joins.Reader;

    public Task OnPersistingAsync(DbSession session, Pdu pdu, long streamOrdering, RoomSnapshot roomAfter, RoomSnapshot? roomBefore) =>
        Task.CompletedTask;

    public void OnPersisted(Pdu pdu, RoomSnapshot roomAfter)
    {
        if (config.Presence.Enabled && config.Federation.Enabled && pdu is { Type: "m.room.member", Membership: "join" } && pdu.StateKey == pdu.Sender)
            _joins.Writer.TryWrite((pdu, roomAfter));
    }
}

/// <summary>
/// Presence across a new join, as Synapse does it (SyTest's SYN-115): a local user who joins a room has their presence
/// sent to the room's other servers, and a remote user who joins gets the presence of the room's local members sent to
/// their server, so both sides see each other at once rather than at the next change.
/// </summary>
public sealed class PresenceIntroductions(RoomJoins joins, PresenceService presence, Database db, PresenceStore store,
    ServerServer.FederationSender federation, HomeserverConfig config, ILogger<PresenceIntroductions> logger) : BackgroundService
{
    /// <summary>Local members whose presence one remote join brings along at most (one EDU, bounded).</summary>
    public const int MaxIntroduced = 1000;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await foreach (var (join, room) in joins.Joins.ReadAllAsync(stoppingToken))
                try
                {
                    await IntroduceAsync(join.Sender, room, stoppingToken);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    logger.LogWarning(e, "Sending presence for the join of {User} to {Room} failed", join.Sender, room.RoomId);
                }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    private async Task IntroduceAsync(string joiner, RoomSnapshot room, CancellationToken ct)
    {
        if (!UserId.TryParse(joiner, out var user))
            return;
        var local = user.Server.Value == config.ServerName;
        var introduced = local
            ? [joiner]
            : room.JoinedMembers.Where(m => m.EndsWith(":" + config.ServerName, StringComparison.Ordinal)).Take(MaxIntroduced).ToList();
        var servers = local ? room.JoinedServers.Where(s => s != config.ServerName).ToList() : [user.Server.Value];
        if (introduced.Count == 0 || servers.Count == 0)
            return;
        var rows = (await db.ReadAsync(s => store.GetManyAsync(s, introduced), ct)).ToDictionary(r => r.UserId);
        var push = new JsonArray();
        foreach (var userId in introduced.Where(rows.ContainsKey))
        {
            var update = presence.Content(rows[userId], userId);
            update["user_id"] = userId;
            push.Add(update);
        }
        if (push.Count > 0)
            await federation.SendEduAsync(servers, "m.presence", new JsonObject { ["push"] = push }, ct);
    }
}
