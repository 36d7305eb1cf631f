using Matrix.Homeserver.AccountData;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Rooms;
using Matrix.Homeserver.Storage;
using Matrix.Homeserver.Sync;

namespace Matrix.Homeserver.Replication;

/// <summary>
/// What a process does with the other processes' messages. A worker follows the main process: its stream positions,
/// wake-ups, room snapshots, typing and caches. The main process writes the presence activity workers pass on and
/// applies the EDUs event writers queued. A
/// federation sender sends what was queued for its destinations, an application-service sender for its services, a
/// pusher delivers its users' notifications. Every process drops the cached values another one's
/// write changed.
/// </summary>
public sealed class ReplicationInbox(HomeserverConfig config, StreamPositions streams, SyncNotifier notifier, EventSpine spine, EventCache events,
    RecentEventIndex recentEvents, FollowedRoomRows followedRows,
    Receipts.TypingService typing, AccessTokenCache tokens, E2ee.DeviceKeyStore deviceKeys, IgnoredUsers ignoredUsers, MembershipCache memberships,
    ErasedUsers erasedUsers,
    Presence.PresenceService presence, ServerServer.FederationSender federationSender, Push.PushSender pushSender,
    ApplicationServices.AppServiceSender appServiceSender, ServerServer.InboundEduQueue inboundEdus)
{
    public async Task HandleAsync(ReplicationMessage message)
    {
        switch (message)
        {
            case ReplicationMessage.Invalidation { Cache: ReplicationMessage.Invalidation.AccessTokens }:
                tokens.ApplyInvalidation();
                break;
            case ReplicationMessage.Invalidation { Cache: ReplicationMessage.Invalidation.DeviceKeyCounts, UserId: { } user, DeviceId: { } device }:
                deviceKeys.ApplyInvalidation(user, device);
                break;
            case ReplicationMessage.Invalidation { Cache: ReplicationMessage.Invalidation.IgnoredUsers, UserId: { } user }:
                ignoredUsers.ApplyInvalidation(user);
                break;
            case ReplicationMessage.Invalidation { Cache: ReplicationMessage.Invalidation.Memberships, UserId: { } user }:
                memberships.ApplyInvalidation(user);
                break;
            case ReplicationMessage.Invalidation { Cache: ReplicationMessage.Invalidation.ErasedUsers }:
                erasedUsers.ApplyInvalidation();
                break;
            case ReplicationMessage.FederationWake wake:
                federationSender.OnWake(wake.Destination, wake.BackUp);
                break;
            case ReplicationMessage.AppServiceWake wake:
                appServiceSender.OnWake(wake.ServiceId);
                break;
            case ReplicationMessage.PushWake push when pushSender.Pushes:
                await WakePushersAsync(push);
                break;
            case ReplicationMessage.InboundEdusQueued when config.Worker.IsMain:
                inboundEdus.Wake();
                break;
            case ReplicationMessage.PresenceActivity activity when config.Worker.IsMain:
                await presence.SetAsync(activity.UserId, activity.State, null, keepStatusMsg: true, CancellationToken.None);
                break;
            case ReplicationMessage.Positions { Writer: { } writer } positions when streams.IsShared(StreamPositions.SharedStream):
                FollowEventWriter(writer, positions);
                return;
            // The processes that write events tell the others of the rooms they changed (only the main process does,
            // unless there are event writers).
            case ReplicationMessage.RoomChanged changed:
                spine.ForgetSnapshot(changed.RoomId);
                return;
            case ReplicationMessage.RoomDropped dropped:
                spine.ForgetSnapshot(dropped.RoomId);
                events.ForgetRoom(dropped.RoomId);
                followedRows.ForgetRoom(dropped.RoomId);
                memberships.ForgetAll();
                return;
            case ReplicationMessage.EventsForgotten forgotten:
                events.Forget(forgotten.EventIds);
                followedRows.ForgetAll();
                return;
        }
        if (config.Worker.IsMain)
            return;
        switch (message)
        {
            case ReplicationMessage.Positions positions:
                if (positions.EventsFrom is { } from && positions.Visible.TryGetValue("events", out var upTo))
                {
                    var stretch = positions.Stretch ?? new RecentEventIndex.Stretch([], [], []);
                    foreach (var roomId in stretch.RoomsWithRedactions)
                        followedRows.ForgetRoom(roomId);
                    recentEvents.Follow(from, upTo, stretch);
                }
                streams.Follow(positions.Visible);
                if (positions.Wake.Count > 0)
                    notifier.NotifyHere(positions.Wake);
                break;
            case ReplicationMessage.Typing typed:
                typing.ApplyFromMain(typed.RoomId, typed.Users, typed.Serial);
                break;
            case ReplicationMessage.MainStarted:
                ForgetEverything();
                typing.ForgetAll();
                break;
        }
    }

    /// <summary>
    /// Several event writers: where one of them stands in the events stream (this writer moving up to it when idle, which
    /// it then announces), the main process's other streams, and wake-ups for once this process sees what the writer saw.
    /// </summary>
    private void FollowEventWriter(string writer, ReplicationMessage.Positions positions)
    {
        if (positions.Visible.TryGetValue(StreamPositions.SharedStream, out var position))
            streams.FollowWriter(writer, position, live: true);
        if (!config.Worker.IsMain)
            streams.Follow(positions.Visible);
        if (positions.Wake.Count > 0)
            streams.WhenVisible(StreamPositions.SharedStream, positions.WakeAt ?? 0, () => notifier.NotifyHere(positions.Wake));
    }

    private async Task WakePushersAsync(ReplicationMessage.PushWake push)
    {
        if (push.All)
            pushSender.Wake();
        if (push.Badge is { } user)
            pushSender.OnReadReceipt(user);
        var users = push.Users ?? [];
        // A room's members are looked up only when someone here has a pusher (a start-up's full pass covers what is missed).
        if (push.RoomId is not null && pushSender.AnyoneHasPushers && await spine.GetRoomAsync(push.RoomId, CancellationToken.None) is { } room)
            pushSender.WakeForRoom(room.JoinedMembers, users.FirstOrDefault());
        else if (users.Count > 0)
            pushSender.WakeFor(users);
    }

    /// <summary>A worker that may have missed messages: nothing it holds from the main process's writes is trusted.</summary>
    public void ForgetEverything()
    {
        recentEvents.ForgetFollowed();
        followedRows.ForgetAll();
        tokens.ApplyInvalidation();
        deviceKeys.ForgetCounts();
        ignoredUsers.ForgetAll();
        memberships.ForgetAll();
        erasedUsers.ApplyInvalidation();
        spine.ForgetAllSnapshots();
    }
}
