using System.Text.Json;
using System.Text.Json.Nodes;
using Matrix.Federation.Identifiers;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Profile;
using Matrix.Homeserver.Rooms;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Admin;

/// <summary>A value a request sets (possibly to null), as opposed to one it leaves alone (the <see cref="Set{T}"/> itself null).</summary>
public readonly record struct Set<T>(T Value);

/// <summary>What <c>PUT /_synapse/admin/v2/users/{userId}</c> asks for; null members leave the account's value as it is.</summary>
public sealed record AdminUserChanges(
    string? Password, bool LogoutDevices, Set<string>? Displayname, Set<string>? AvatarUrl, IReadOnlyList<(string Medium, string Address)>? Threepids,
    IReadOnlyList<(string AuthProvider, string ExternalId)>? ExternalIds, bool? Admin, bool? Deactivated, bool? Locked, Set<string?>? UserType)
{
    /// <summary><c>{"deactivated": false}</c> and nothing else: what an application service may ask for its users.</summary>
    public static readonly AdminUserChanges ReactivationOnly = new(null, true, null, null, null, null, null, Deactivated: false, null, null);
}

/// <summary>
/// Accounts as an administrator manages them (Synapse's user admin API): their full description, creation and
/// modification in one request, deactivation (with erasure and leaving every room), built on the account, profile and
/// third-party ID services the client API uses.
/// </summary>
public sealed class AdminUserService(
    Database db, UserStore users, AdminUserStore adminUsers, AccountService accounts, ProfileService profiles, ProfileStore profileStore,
    ThreepidService threepids, ExternalIdStore externalIds, AccountDeactivation deactivation, ErasedUsers erasedUsers,
    TimeProvider clock, ILogger<AdminUserService> logger)
{
    public static readonly IReadOnlyList<string> UserTypes = ["bot", "support"];

    /// <summary>Synapse's description of an account (<c>GET /v2/users/{userId}</c>); null when there is no such account.</summary>
    public async Task<JsonObject?> DescribeAsync(string userId, CancellationToken ct)
    {
        var (row, ids) = await db.ReadAsync(async s => (await adminUsers.GetAsync(s, userId), await externalIds.ListForUserAsync(s, userId)), ct);
        if (row is null)
            return null;
        var json = ListEntry(row);
        // Synapse reports the creation time in seconds here and in milliseconds in the list.
        json["creation_ts"] = row.CreatedTs / 1000;
        json["suspended"] = row.Suspended != 0;
        json["appservice_id"] = null;
        json["consent_server_notice_sent"] = null;
        json["consent_version"] = null;
        json["consent_ts"] = null;
        json["threepids"] = await threepids.ListAsync(userId, ct);
        json["external_ids"] = new JsonArray(ids.Select(id => (JsonNode)new JsonObject
        {
            ["auth_provider"] = id.AuthProvider, ["external_id"] = id.ExternalId,
        }).ToArray());
        return json;
    }

    /// <summary>An account as <c>GET /v2/users</c> lists it.</summary>
    public static JsonObject ListEntry(AdminUserRow row) => new()
    {
        ["name"] = row.UserId,
        ["is_guest"] = row.IsGuest != 0,
        ["admin"] = row.IsAdmin != 0,
        ["user_type"] = row.UserType,
        ["deactivated"] = row.Deactivated != 0,
        ["erased"] = row.Erased != 0,
        ["shadow_banned"] = row.ShadowBanned != 0,
        ["displayname"] = ProfileText(row.DisplaynameJson),
        ["avatar_url"] = ProfileText(row.AvatarUrlJson),
        ["creation_ts"] = row.CreatedTs,
        ["last_seen_ts"] = row.LastSeenTs,
        ["locked"] = row.Locked != 0,
    };

    /// <summary>A profile field as stored (JSON text) when it is a string.</summary>
    public static string? ProfileText(string? valueJson) =>
        valueJson is null ? null : JsonSerializer.Deserialize<JsonElement>(valueJson) is { ValueKind: JsonValueKind.String } text ? text.GetString() : null;

    /// <summary>Creates the account with what <paramref name="changes"/> gives, or changes the existing one; true when it was created.</summary>
    public async Task<bool> CreateOrModifyAsync(Requester requester, UserId userId, AdminUserChanges changes, CancellationToken ct)
    {
        if (changes is { Deactivated: true, Locked: true })
            throw MatrixException.InvalidParam("A user can't be deactivated and locked.");
        AccountService.ValidatePassword(changes.Password);
        ValidateProfile(changes);
        var existing = await db.ReadAsync(s => users.GetAsync(s, userId.Value), ct);
        if (existing is null)
        {
            await CreateAsync(userId, changes, ct);
            logger.LogWarning("{Admin} created {UserId}", requester.UserId.Value, userId.Value);
            return true;
        }
        await ModifyAsync(requester, userId, existing, changes, ct);
        logger.LogWarning("{Admin} modified {UserId}", requester.UserId.Value, userId.Value);
        return false;
    }

    private static void ValidateProfile(AdminUserChanges changes)
    {
        if (changes.Displayname?.Value is { Length: > ProfileService.MaxDisplayNameLength })
            throw MatrixException.InvalidParam($"displayname may not be longer than {ProfileService.MaxDisplayNameLength} characters.");
        if (changes.AvatarUrl?.Value is { Length: > 0 } url && !url.StartsWith("mxc://", StringComparison.Ordinal))
            throw MatrixException.InvalidParam("avatar_url must be an mxc:// URI.");
        if (changes.UserType is { Value: { } type } && !UserTypes.Contains(type))
            throw MatrixException.InvalidParam("Invalid user type.");
    }

    private async Task CreateAsync(UserId userId, AdminUserChanges changes, CancellationToken ct)
    {
        var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
        await accounts.RegisterAsync(userId, changes.Password, changes.Admin ?? false, deviceId: null, deviceDisplayName: null, inhibitLogin: true,
            wantsRefreshToken: false, async s =>
            {
                if (changes.Displayname is { Value.Length: > 0 } name)
                    await profileStore.SetAsync(s, userId.Value, "displayname", JsonSerializer.Serialize(name.Value));
                if (changes.AvatarUrl is { Value.Length: > 0 } avatar)
                    await profileStore.SetAsync(s, userId.Value, "avatar_url", JsonSerializer.Serialize(avatar.Value));
                if (changes.UserType is { Value: { } type })
                    await users.SetUserTypeAsync(s, userId.Value, type);
                foreach (var (medium, address) in changes.Threepids ?? [])
                    await threepids.AddAsync(s, userId.Value, medium, address, now);
                if (changes.ExternalIds is { } ids)
                    await ReplaceExternalIdsAsync(s, userId.Value, ids);
            }, ct);
    }

    private async Task ModifyAsync(Requester requester, UserId userId, UserRow user, AdminUserChanges changes, CancellationToken ct)
    {
        if (changes.Displayname is { } name)
            await SetProfileFieldAsync(requester, userId, "displayname", name.Value, ct);
        if (changes.Threepids is { } wanted)
            await ReplaceThreepidsAsync(user.UserId, wanted, ct);
        if (changes.ExternalIds is { } ids)
            await db.WriteAsync(s => ReplaceExternalIdsAsync(s, user.UserId, ids), ct);
        if (changes.AvatarUrl is { } avatar)
            await SetProfileFieldAsync(requester, userId, "avatar_url", avatar.Value, ct);
        if (changes.Admin is { } admin && admin != (user.IsAdmin != 0))
            await SetAdminAsync(requester, user.UserId, admin, ct);
        if (changes.Password is { } password)
            await accounts.ChangePasswordAsync(user.UserId, keptDeviceId: null, password, changes.LogoutDevices, alsoInTransaction: null, ct);
        if (changes.Deactivated == true && user.Deactivated == 0)
            await deactivation.DeactivateAsync(user.UserId, erase: false, idServer: null, alsoInTransaction: null, ct);
        else if (changes.Deactivated == false && user.Deactivated != 0)
        {
            await db.WriteAsync(s => users.ReactivateAsync(s, user.UserId), ct);
            erasedUsers.Changed();
        }
        if (changes.Locked is { } locked)
            await db.WriteAsync(s => users.SetLockedAsync(s, user.UserId, locked), ct);
        if (changes.UserType is { } userType)
            await db.WriteAsync(s => users.SetUserTypeAsync(s, user.UserId, userType.Value), ct);
    }

    /// <summary>An empty value removes the field (as in Synapse).</summary>
    private Task SetProfileFieldAsync(Requester requester, UserId userId, string field, string value, CancellationToken ct) => value.Length == 0
        ? profiles.DeleteFieldAsync(requester, userId, field, ct)
        : profiles.SetFieldAsync(requester, userId, field, JsonSerializer.SerializeToElement(value), ct);

    /// <summary>The account's third-party IDs become <paramref name="wanted"/>: those dropped are unbound and removed, new ones added.</summary>
    private async Task ReplaceThreepidsAsync(string userId, IReadOnlyList<(string Medium, string Address)> wanted, CancellationToken ct)
    {
        var current = (await threepids.ListAsync(userId, ct)).Select(t => (t!["medium"]!.GetValue<string>(), t["address"]!.GetValue<string>())).ToHashSet();
        foreach (var (medium, address) in current.Except(wanted))
            await threepids.DeleteAsync(userId, medium, address, idServer: null, ct);
        var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
        await db.WriteAsync(async s =>
        {
            foreach (var (medium, address) in wanted.Distinct().Except(current))
                await threepids.AddAsync(s, userId, medium, address, now);
        }, ct);
    }

    private async Task ReplaceExternalIdsAsync(DbSession s, string userId, IReadOnlyList<(string AuthProvider, string ExternalId)> ids)
    {
        foreach (var (provider, externalId) in ids)
            if (await externalIds.FindUserAsync(s, provider, externalId) is { } owner && owner != userId)
                throw new MatrixException(409, "M_UNKNOWN", "External id is already in use.");
        await externalIds.RemoveAllForUserAsync(s, userId);
        foreach (var (provider, externalId) in ids)
            await externalIds.AddAsync(s, provider, externalId, userId);
    }

    /// <summary>Makes the account a server admin or not; an admin may not demote themself (as in Synapse).</summary>
    public async Task SetAdminAsync(Requester requester, string userId, bool admin, CancellationToken ct)
    {
        if (!admin && requester.UserId.Value == userId)
            throw MatrixException.InvalidParam("You may not demote yourself.");
        await db.WriteAsync(s => users.SetAdminAsync(s, userId, admin), ct);
        logger.LogWarning("{Admin} set {UserId} admin={Value}", requester.UserId.Value, userId, admin);
    }

    public async Task SetSuspendedAsync(Requester requester, string userId, bool suspended, CancellationToken ct)
    {
        await db.WriteAsync(s => users.SetSuspendedAsync(s, userId, suspended), ct);
        logger.LogWarning("{Admin} set {UserId} suspended={Value}", requester.UserId.Value, userId, suspended);
    }
}
