using System.Threading.Channels;
using Matrix.Federation.Events;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Rooms;

/// <summary>Notes the rooms whose current <c>m.room.guest_access</c> changed to anything but <c>can_join</c>, for <see cref="GuestEviction"/>.</summary>
public sealed class GuestAccessRevocations : IEventListener
{
    private readonly Channel<string> _rooms = Channel.CreateUnbounded<string>(new UnboundedChannelOptions { SingleReader = true });

    public ChannelReader<string> Rooms => _rooms.Reader;

    public Task OnPersistingAsync(DbSession session, Pdu pdu, long streamOrdering, RoomSnapshot roomAfter, RoomSnapshot? roomBefore) =>
        Task.CompletedTask;

    public void OnPersisted(Pdu pdu, RoomSnapshot roomAfter)
    {
        if (pdu.Type == MembershipService.GuestAccessKey.Type && pdu.StateKey == "" && roomAfter.StateEventId(MembershipService.GuestAccessKey) == pdu.EventId
            && pdu.ContentString("guest_access") != "can_join")
            _rooms.Writer.TryWrite(pdu.RoomId);
    }
}

/// <summary>
/// Spec (Guest Access, server behaviour): when a room stops allowing guests, its local guests (joined or invited) leave
/// it, whichever server's user changed the setting. As in Synapse each guest leaves by itself rather than being
/// kicked, so no one's power level is needed.
/// </summary>
public sealed class GuestEviction(
    GuestAccessRevocations revocations, EventSpine spine, MembershipService memberships, Database db, UserStore users, HomeserverConfig config,
    ILogger<GuestEviction> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await foreach (var roomId in revocations.Rooms.ReadAllAsync(stoppingToken))
                try
                {
                    await EvictAsync(roomId, stoppingToken);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    logger.LogWarning(e, "Removing guests from {RoomId} failed", roomId);
                }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    private async Task EvictAsync(string roomId, CancellationToken ct)
    {
        if (await spine.GetRoomAsync(roomId, ct) is not { } room || await memberships.GuestsMayJoinAsync(room, ct))
            return;
        var localMembers = room.JoinedMembers.Concat(room.InvitedMembers).Where(user => EventSigning.ServerOf(user) == config.ServerName).ToList();
        foreach (var guest in await db.ReadAsync(s => users.GuestsAmongAsync(s, localMembers), ct))
            await memberships.ChangeAsync(roomId, guest, guest, "leave", reason: null, extraContent: null, ct);
    }
}
