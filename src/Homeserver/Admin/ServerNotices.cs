using System.Text.Json.Nodes;
using Matrix.Federation.Identifiers;
using Matrix.Homeserver.AccountData;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Rooms;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Admin;

/// <summary>
/// Synapse's server notices: the configured system user (made on first use) keeps one private room per user, tagged
/// <c>m.server_notice</c> for them, where only it may speak (everyone else is at -10); a user who left theirs gets a new
/// one with the next notice. The user is invited, or joined when <c>auto_join</c> is set.
/// </summary>
public sealed class ServerNotices(
    HomeserverConfig config, AdminUserService adminUsers, UserStore users, RoomStore rooms, EventSpine spine, MembershipService memberships,
    RoomCreation creation, RoomTags tags, Database db, ILogger<ServerNotices> logger)
{
    public const string RoomTag = "m.server_notice";

    public async Task<PersistedEvent> SendAsync(Requester admin, string userId, NewEvent notice, CancellationToken ct)
    {
        var settings = config.ServerNotices;
        if (settings.SystemMxidLocalpart is not { } localpart)
            throw new MatrixException(400, "M_UNKNOWN", "Server notices are not enabled on this server.");
        var system = $"@{localpart}:{config.ServerName}";
        if (await db.ReadAsync(s => users.GetAsync(s, system), ct) is null)
            await adminUsers.CreateOrModifyAsync(admin, SystemUserId(system), new AdminUserChanges(null, false, new Set<string>(settings.SystemMxidDisplayName),
                settings.SystemMxidAvatarUrl is { } avatar ? new Set<string>(avatar) : null, null, null, Admin: false, null, null, null), ct);
        var roomId = await ExistingRoomAsync(system, userId, ct) ?? await CreateRoomAsync(system, userId, ct);
        var sent = await spine.SendAsync(roomId, notice with { Sender = system }, ct);
        logger.LogWarning("{Admin} sent a server notice to {UserId}: {EventId}", admin.UserId.Value, userId, sent.Pdu.EventId);
        return sent;
    }

    private static UserId SystemUserId(string system) =>
        UserId.TryParse(system, out var id) ? id : throw new InvalidOperationException("the configured localpart was checked at start-up");

    /// <summary>A room the system user is in where the user is invited or joined.</summary>
    private async Task<string?> ExistingRoomAsync(string system, string userId, CancellationToken ct)
    {
        foreach (var membership in (await db.ReadAsync(s => rooms.MembershipsAsync(s, system), ct)).Where(m => m.Membership == "join"))
            if (await spine.GetRoomAsync(membership.RoomId, ct) is { } room
                && (room.JoinedMembers.Contains(userId) || room.InvitedMembers.Contains(userId)))
                return room.RoomId;
        return null;
    }

    private async Task<string> CreateRoomAsync(string system, string userId, CancellationToken ct)
    {
        var settings = config.ServerNotices;
        IReadOnlyList<(string, string, JsonObject)> avatar = settings.RoomAvatarUrl is { } url ? [("m.room.avatar", "", new JsonObject { ["url"] = url })] : [];
        var roomId = await creation.CreateAsync(system, new CreateRoomRequest(config.EffectiveDefaultRoomVersion, "private_chat", Public: false,
            settings.RoomName, settings.RoomTopic, Invite: [], IsDirect: false, CreationContent: [], avatar,
            new JsonObject { ["users_default"] = -10 }, AliasName: null), ct);
        await tags.UpdateAsync(userId, roomId, t => t[RoomTag] = new JsonObject(), ct);
        await memberships.ChangeAsync(roomId, system, userId, "invite", reason: null, extraContent: null, ct);
        if (settings.AutoJoin)
            await memberships.ChangeAsync(roomId, userId, userId, "join", reason: null, extraContent: null, ct);
        return roomId;
    }
}
