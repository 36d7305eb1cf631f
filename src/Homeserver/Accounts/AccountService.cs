using Matrix.Federation.Identifiers;
using Matrix.Homeserver.AccountData;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Profile;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Accounts;

/// <summary>What a client receives after logging in or registering.</summary>
public sealed record LoginSession(string UserId, string DeviceId, string AccessToken, string? RefreshToken, long? ExpiresInMs);

/// <summary>Accounts, devices and their tokens: registration, login, refresh, logout, password change, deactivation.</summary>
public sealed class AccountService(
    Database db, UserStore users, DeviceStore devices, TokenStore tokens, ProfileStore profiles, AccountDataStore accountData,
    PasswordHasher hasher, E2ee.DeviceKeyStore deviceKeys, E2ee.DeviceListStore deviceLists, E2ee.DeviceListService deviceListService,
    Push.PusherStore pushers, ThreepidStore threepids, HomeserverConfig config, TimeProvider clock, ILogger<AccountService> logger)
{
    public const int MaxPasswordLength = 512;
    public const int MaxDeviceIdLength = 255;

    private long Now => clock.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>Checks a requested localpart for registration; returns the user ID it makes.</summary>
    /// <param name="forAppService">Application services may use localparts starting with '_', which are reserved for them.</param>
    public UserId ValidateNewLocalpart(string username, bool forAppService = false)
    {
        var localpart = username.ToLowerInvariant();
        if (!UserId.IsValidNewLocalpart(localpart))
            throw new MatrixException(400, "M_INVALID_USERNAME", "User ID can only contain the characters a-z, 0-9, '.', '_', '=', '-', '/' and '+'.");
        if (localpart.StartsWith('_') && !forAppService)
            throw new MatrixException(400, "M_INVALID_USERNAME", "User IDs starting with '_' are reserved.");
        if (IsGuestLocalpart(localpart) && !forAppService)
            throw new MatrixException(400, "M_INVALID_USERNAME", "Numeric user IDs are reserved for guest users.");
        var userId = UserId.Create(localpart, Federation.Identifiers.ServerName.Parse(config.ServerName));
        if (System.Text.Encoding.UTF8.GetByteCount(userId.Value) > UserId.MaxLength)
            throw new MatrixException(400, "M_INVALID_USERNAME", $"User ID may not be longer than {UserId.MaxLength} bytes.");
        return userId;
    }

    public async Task<bool> IsUserIdTakenAsync(UserId userId, CancellationToken ct) =>
        await db.ReadAsync(s => users.GetAsync(s, userId.Value), ct) is not null;

    public static void ValidatePassword(string? password)
    {
        if (password is { Length: > MaxPasswordLength })
            throw new MatrixException(400, "M_PASSWORD_TOO_LONG", $"Password may not be longer than {MaxPasswordLength} characters.");
    }

    /// <summary>
    /// Creates the account, and unless <paramref name="inhibitLogin"/> a device and tokens, all in one transaction
    /// (with <paramref name="alsoInTransaction"/>, e.g. closing the UIA session that authorised it).
    /// </summary>
    /// <param name="passwordHash">the password already hashed (one a registration session remembered), when <paramref name="password"/> is null</param>
    public async Task<LoginSession?> RegisterAsync(UserId userId, string? password, bool isAdmin, string? deviceId, string? deviceDisplayName,
        bool inhibitLogin, bool wantsRefreshToken, Func<DbSession, Task>? alsoInTransaction, CancellationToken ct, string? passwordHash = null)
    {
        ValidatePassword(password);
        ValidateDeviceId(deviceId);
        passwordHash = password is null ? passwordHash : await hasher.HashAsync(password, ct);
        var session = await db.WriteAsync(async s =>
        {
            if (!await users.InsertAsync(s, userId.Value, passwordHash, isAdmin, Now))
                throw new MatrixException(400, "M_USER_IN_USE", "User ID already taken.");
            await profiles.SetAsync(s, userId.Value, "displayname", System.Text.Json.JsonSerializer.Serialize(userId.Localpart));
            if (alsoInTransaction is not null)
                await alsoInTransaction(s);
            return inhibitLogin ? null : await IssueSessionAsync(s, userId.Value, deviceId, deviceDisplayName, wantsRefreshToken);
        }, ct);
        logger.LogInformation("Registered {UserId}", userId.Value);
        return session;
    }

    /// <summary>
    /// Spec (Guest Access): a guest account with a numeric localpart (reserved for guests, as in Synapse), its display
    /// name that number, and a device the server names.
    /// </summary>
    public async Task<LoginSession> RegisterGuestAsync(string? deviceDisplayName, CancellationToken ct)
    {
        var server = Federation.Identifiers.ServerName.Parse(config.ServerName);
        var session = await db.WriteAsync(async s =>
        {
            for (var attempt = 0; ; attempt++)
            {
                var userId = UserId.Create(System.Security.Cryptography.RandomNumberGenerator.GetInt32(100_000_000, int.MaxValue)
                    .ToString(System.Globalization.CultureInfo.InvariantCulture), server);
                if (await users.InsertAsync(s, userId.Value, passwordHash: null, isAdmin: false, Now, isGuest: true))
                {
                    await profiles.SetAsync(s, userId.Value, "displayname", System.Text.Json.JsonSerializer.Serialize(userId.Localpart));
                    return await IssueSessionAsync(s, userId.Value, deviceId: null, deviceDisplayName, wantsRefreshToken: false);
                }
                if (attempt == 10)
                    throw new MatrixException(500, "M_UNKNOWN", "Unable to find a free guest user ID.");
            }
        }, ct);
        logger.LogInformation("Registered guest {UserId}", session.UserId);
        return session;
    }

    /// <summary>Whether a localpart is of the form reserved for guests.</summary>
    public static bool IsGuestLocalpart(string localpart) => localpart.Length > 0 && localpart.All(char.IsAsciiDigit);

    /// <summary>
    /// The guest that <paramref name="guestAccessToken"/> belongs to, when it is <paramref name="userId"/>: only a guest's
    /// own token may upgrade it to a full account.
    /// </summary>
    public async Task EnsureGuestTokenOfAsync(UserId userId, string guestAccessToken, CancellationToken ct)
    {
        var found = await db.ReadAsync(s => tokens.GetAccessTokenWithUserAsync(s, Secrets.Hash(guestAccessToken)), ct);
        if (found is not var (_, user))
            throw MatrixException.UnknownToken(softLogout: false);
        if (user.IsGuest == 0 || user.UserId != userId.Value)
            throw MatrixException.Forbidden("Cannot register taken user ID without valid guest credentials for that user.");
    }

    /// <summary>Makes a guest a full account with a password, and (unless <paramref name="inhibitLogin"/>) a new session, in one transaction.</summary>
    public async Task<LoginSession?> UpgradeGuestAsync(UserId userId, string? password, string? deviceId, string? deviceDisplayName,
        bool inhibitLogin, bool wantsRefreshToken, Func<DbSession, Task> alsoInTransaction, CancellationToken ct)
    {
        ValidatePassword(password);
        ValidateDeviceId(deviceId);
        var passwordHash = password is null ? null : await hasher.HashAsync(password, ct);
        var session = await db.WriteAsync(async s =>
        {
            if (!await users.UpgradeGuestAsync(s, userId.Value, passwordHash))
                throw new MatrixException(400, "M_USER_IN_USE", "User ID already taken.");
            await alsoInTransaction(s);
            return inhibitLogin ? null : await IssueSessionAsync(s, userId.Value, deviceId, deviceDisplayName, wantsRefreshToken);
        }, ct);
        logger.LogInformation("Upgraded guest {UserId} to a full account", userId.Value);
        return session;
    }

    /// <summary>Checks a password login; the user ID on success, else null. Never says which half was wrong.</summary>
    public async Task<string?> CheckPasswordAsync(string userId, string password, CancellationToken ct)
    {
        var user = await db.ReadAsync(s => users.GetAsync(s, userId), ct);
        if (user is null || user.PasswordHash is null || password.Length > MaxPasswordLength)
            return null;
        if (!await hasher.VerifyAsync(password, user.PasswordHash, ct))
            return null;
        if (user.Deactivated != 0)
            throw new MatrixException(403, "M_USER_DEACTIVATED", "This account has been deactivated.");
        if (hasher.NeedsRehash(user.PasswordHash))
        {
            var upgraded = await hasher.HashAsync(password, ct);
            await db.WriteAsync(s => users.SetPasswordHashAsync(s, userId, upgraded), ct);
        }
        return userId;
    }

    public async Task<UserRow> GetActiveUserAsync(string userId, CancellationToken ct)
    {
        var user = await db.ReadAsync(s => users.GetAsync(s, userId), ct) ?? throw MatrixException.Forbidden("Invalid login.");
        if (user.Deactivated != 0)
            throw new MatrixException(403, "M_USER_DEACTIVATED", "This account has been deactivated.");
        return user;
    }

    /// <summary>A login's session; a device it creates is a device-list change (the user's other devices and the users sharing a room see it).</summary>
    public async Task<LoginSession> LoginAsync(string userId, string? deviceId, string? deviceDisplayName, bool wantsRefreshToken, CancellationToken ct)
    {
        ValidateDeviceId(deviceId);
        var (session, change) = await db.WriteAsync(async s =>
        {
            var existed = deviceId is not null && await devices.GetAsync(s, userId, deviceId) is not null;
            var session = await IssueSessionAsync(s, userId, deviceId, deviceDisplayName, wantsRefreshToken);
            return (session, existed ? (long?)null : await deviceLists.AddChangeAsync(s, userId));
        }, ct);
        if (change is { } streamId)
            await deviceListService.PublishDeviceChangesAsync(userId, [(session.DeviceId, streamId)], ct);
        return session;
    }

    /// <summary>Creates (or reuses) the device and gives it a fresh access token, replacing the device's earlier tokens.</summary>
    private async Task<LoginSession> IssueSessionAsync(DbSession s, string userId, string? deviceId, string? displayName, bool wantsRefreshToken)
    {
        // A locked account gets no new session until it is unlocked (spec: account locking).
        if (await users.GetAsync(s, userId) is { Locked: not 0 })
            throw Authenticator.LockedError();
        var now = Now;
        deviceId ??= Secrets.NewDeviceId();
        await tokens.DeleteForDeviceAsync(s, userId, deviceId);
        await devices.EnsureAsync(s, userId, deviceId, displayName, now);
        return await IssueTokensAsync(s, userId, deviceId, wantsRefreshToken, predecessorHash: null, now);
    }

    /// <summary>
    /// An access token for an admin to act as the user (Synapse's login as a user), valid until <paramref name="validUntilMs"/>
    /// if given: no device of the user's is made or shown, and the token goes when the admin logs out everywhere.
    /// </summary>
    public async Task<string> IssuePuppetTokenAsync(string admin, string userId, long? validUntilMs, CancellationToken ct)
    {
        var accessToken = Secrets.NewToken("mat_");
        await db.WriteAsync(s => tokens.InsertPuppetTokenAsync(s, Secrets.Hash(accessToken), userId, "ADMIN_" + Secrets.NewDeviceId(), admin, Now, validUntilMs), ct);
        logger.LogWarning("{Admin} logged in as {UserId}", admin, userId);
        return accessToken;
    }

    private async Task<LoginSession> IssueTokensAsync(DbSession s, string userId, string deviceId, bool withRefreshToken, string? predecessorHash, long now)
    {
        var accessToken = Secrets.NewToken("mat_");
        if (!withRefreshToken)
        {
            await tokens.InsertAccessTokenAsync(s, Secrets.Hash(accessToken), userId, deviceId, now, expiresTs: null, refreshTokenHash: null);
            return new LoginSession(userId, deviceId, accessToken, null, null);
        }
        var refreshToken = Secrets.NewToken("mar_");
        var refreshHash = Secrets.Hash(refreshToken);
        var lifetime = config.Auth.RefreshableAccessTokenLifetimeMs;
        await tokens.InsertRefreshTokenAsync(s, refreshHash, userId, deviceId, now, now + config.Auth.RefreshTokenLifetimeMs, predecessorHash);
        await tokens.InsertAccessTokenAsync(s, Secrets.Hash(accessToken), userId, deviceId, now, now + lifetime, refreshHash);
        return new LoginSession(userId, deviceId, accessToken, refreshToken, lifetime);
    }

    /// <summary>
    /// Exchanges a refresh token for a new pair. The old refresh token stays usable until the new pair is used
    /// (so a lost response can be retried); refreshing it again replaces the earlier unused pair.
    /// </summary>
    public Task<LoginSession> RefreshAsync(string refreshToken, CancellationToken ct) => db.WriteAsync(async s =>
    {
        var now = Now;
        var hash = Secrets.Hash(refreshToken);
        var row = await tokens.GetRefreshTokenAsync(s, hash);
        if (row is null || row.ExpiresTs <= now)
            throw MatrixException.UnknownToken(softLogout: row is not null);
        if (await users.GetAsync(s, row.UserId) is { Locked: not 0 })
            throw Authenticator.LockedError();
        await tokens.RevokePredecessorAsync(s, hash);
        foreach (var unusedSuccessor in await tokens.SuccessorsOfAsync(s, hash))
            await tokens.DeleteRefreshTokenAsync(s, unusedSuccessor);
        await tokens.DeleteAccessTokensIssuedWithAsync(s, hash);
        return await IssueTokensAsync(s, row.UserId, row.DeviceId, withRefreshToken: true, predecessorHash: hash, now);
    }, ct);

    /// <summary>Renames a device; the new name is a device-list change others see. False when there is no such device.</summary>
    /// <summary>Renames the device (no name: unchanged); false when the user has no such device.</summary>
    public async Task<bool> RenameDeviceAsync(string userId, string deviceId, string? displayName, CancellationToken ct)
    {
        if (displayName is null)
            return await db.ReadAsync(s => devices.GetAsync(s, userId, deviceId), ct) is not null;
        var change = await db.WriteAsync(async s => await devices.SetDisplayNameAsync(s, userId, deviceId, displayName)
            ? await deviceLists.AddChangeAsync(s, userId) : (long?)null, ct);
        if (change is { } streamId)
            await deviceListService.PublishDeviceChangesAsync(userId, [(deviceId, streamId)], ct);
        return change is not null;
    }

    /// <summary>
    /// An application service creating a device for one of its users (v1.17): no access token, a device-list change.
    /// False when the device already existed (it is then only renamed when a name is given).
    /// </summary>
    public async Task<bool> CreateOrRenameDeviceForAppServiceAsync(string userId, string deviceId, string? displayName, CancellationToken ct)
    {
        ValidateDeviceId(deviceId);
        var created = await db.WriteAsync(async s =>
        {
            if (await devices.GetAsync(s, userId, deviceId) is not null)
                return (long?)null;
            await devices.EnsureAsync(s, userId, deviceId, displayName, Now);
            return await deviceLists.AddChangeAsync(s, userId);
        }, ct);
        if (created is { } streamId)
        {
            await deviceListService.PublishDeviceChangesAsync(userId, [(deviceId, streamId)], ct);
            return true;
        }
        if (displayName is not null)
            await RenameDeviceAsync(userId, deviceId, displayName, ct);
        return false;
    }

    public async Task DeleteDevicesAsync(string userId, IEnumerable<string> deviceIds, Func<DbSession, Task>? alsoInTransaction, CancellationToken ct)
    {
        var removed = await db.WriteAsync(async s =>
        {
            if (alsoInTransaction is not null)
                await alsoInTransaction(s);
            return await RemoveDevicesAsync(s, userId, deviceIds.Distinct().ToList());
        }, ct);
        await deviceListService.PublishDeviceChangesAsync(userId, removed, ct);
    }

    /// <summary>
    /// Removes devices with their tokens and keys; each removal that had a device is a device-list change, published by
    /// the caller after the commit.
    /// </summary>
    private async Task<List<(string DeviceId, long StreamId)>> RemoveDevicesAsync(DbSession s, string userId, IReadOnlyList<string> deviceIds)
    {
        var changes = new List<(string, long)>();
        foreach (var deviceId in deviceIds)
        {
            await tokens.DeleteForDeviceAsync(s, userId, deviceId);
            await deviceKeys.DeleteDeviceAsync(s, userId, deviceId);
            // A logged-out device must stop getting notifications (as Synapse does).
            await pushers.DeleteForDeviceAsync(s, userId, deviceId);
            if (await devices.GetAsync(s, userId, deviceId) is null)
                continue;
            await devices.DeleteAsync(s, userId, deviceId);
            changes.Add((deviceId, await deviceLists.AddChangeAsync(s, userId)));
        }
        return changes;
    }

    public async Task LogoutAllAsync(string userId, CancellationToken ct)
    {
        var all = (await db.ReadAsync(s => devices.ListAsync(s, userId), ct)).Select(d => d.DeviceId).ToList();
        var removed = await db.WriteAsync(async s =>
        {
            await tokens.DeleteForUserAsync(s, userId);
            return await RemoveDevicesAsync(s, userId, all);
        }, ct);
        await deviceListService.PublishDeviceChangesAsync(userId, removed, ct);
        logger.LogInformation("Logged out all {Count} devices of {UserId}", all.Count, userId);
    }

    /// <summary>
    /// Sets a new password; with <paramref name="logoutDevices"/>, every device but <paramref name="keptDeviceId"/> (the one
    /// asking, none for a password reset by email) is logged out.
    /// </summary>
    public async Task ChangePasswordAsync(string userId, string? keptDeviceId, string newPassword, bool logoutDevices,
        Func<DbSession, Task>? alsoInTransaction, CancellationToken ct)
    {
        ValidatePassword(newPassword);
        var hash = await hasher.HashAsync(newPassword, ct);
        var others = logoutDevices
            ? (await db.ReadAsync(s => devices.ListAsync(s, userId), ct)).Where(d => d.DeviceId != keptDeviceId).ToList()
            : [];
        var removed = await db.WriteAsync(async s =>
        {
            await users.SetPasswordHashAsync(s, userId, hash);
            if (alsoInTransaction is not null)
                await alsoInTransaction(s);
            return await RemoveDevicesAsync(s, userId, others.Select(d => d.DeviceId).ToList());
        }, ct);
        await deviceListService.PublishDeviceChangesAsync(userId, removed, ct);
        logger.LogInformation("Password changed for {UserId}", userId);
    }

    /// <summary>Deactivates an account for good: no login, no tokens, no devices; profile, account data, pushers and 3PIDs removed.</summary>
    public async Task DeactivateAsync(string userId, Func<DbSession, Task>? alsoInTransaction, CancellationToken ct)
    {
        var all = (await db.ReadAsync(s => devices.ListAsync(s, userId), ct)).Select(d => d.DeviceId).ToList();
        var removed = await db.WriteAsync(async s =>
        {
            await users.DeactivateAsync(s, userId);
            await tokens.DeleteForUserAsync(s, userId);
            var changes = await RemoveDevicesAsync(s, userId, all);
            await profiles.DeleteAllAsync(s, userId);
            await accountData.DeleteAllAsync(s, userId);
            await pushers.DeleteForUserAsync(s, userId);
            await threepids.RemoveAllAsync(s, userId);
            if (alsoInTransaction is not null)
                await alsoInTransaction(s);
            return changes;
        }, ct);
        await deviceListService.PublishDeviceChangesAsync(userId, removed, ct);
        logger.LogInformation("Deactivated {UserId}", userId);
    }

    public static void ValidateDeviceId(string? deviceId)
    {
        if (deviceId is { Length: 0 or > MaxDeviceIdLength })
            throw MatrixException.InvalidParam($"device_id must be between 1 and {MaxDeviceIdLength} characters.");
    }
}
