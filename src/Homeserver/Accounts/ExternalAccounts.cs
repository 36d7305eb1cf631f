using System.Text.Json;
using Matrix.Federation.Identifiers;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Profile;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Accounts;

/// <summary>
/// The local account of someone an outside authority vouched for (the directory, single sign-on): the account with
/// their localpart, linked to the outside identity, or one created for them at their first sign-in with the display
/// name the authority gave.
/// </summary>
public sealed class ExternalAccounts(
    AccountService accounts, ExternalIdStore externalIds, ProfileStore profiles, UserStore users, ThreepidStore threepids, Database db,
    ApplicationServices.AppServiceRegistry appServices, HomeserverConfig config, TimeProvider clock, ILogger<ExternalAccounts> logger)
{
    /// <summary>
    /// The user ID, or null when the localpart makes no valid user ID or lies in an application service's exclusive
    /// namespace (that service's users are not ours to create). 403 for a deactivated account.
    /// </summary>
    public async Task<string?> EnsureAsync(string provider, string externalId, string localpart, string? displayName, CancellationToken ct)
    {
        if (!UserId.TryParse($"@{localpart}:{config.ServerName}", out var userId))
            return null;
        if (await LinkExistingAsync(provider, externalId, userId, ct))
            return userId.Value;
        // A concurrent first sign-in may have created it: that is the same person.
        return await CreateAsync(provider, externalId, userId, displayName, email: null, ct) is CreateResult.NotAllowed ? null : userId.Value;
    }

    /// <summary>Links the account if it exists (403 when deactivated); false when there is no such account.</summary>
    public async Task<bool> LinkExistingAsync(string provider, string externalId, UserId userId, CancellationToken ct)
    {
        var existing = await db.ReadAsync(s => users.GetAsync(s, userId.Value), ct);
        if (existing is null)
            return false;
        if (existing.Deactivated != 0)
            throw new MatrixException(403, "M_USER_DEACTIVATED", "This account has been deactivated.");
        await db.WriteAsync(s => externalIds.AddAsync(s, provider, externalId, userId.Value), ct);
        return true;
    }

    public enum CreateResult { Created, InUse, NotAllowed }

    /// <summary>
    /// Creates the account linked to the outside identity, with its display name and (when no account has it yet) its
    /// email address; InUse when the user ID was taken meanwhile, NotAllowed inside an application service's namespace.
    /// </summary>
    public async Task<CreateResult> CreateAsync(
        string provider, string externalId, UserId userId, string? displayName, string? email, CancellationToken ct)
    {
        if (appServices.ExclusiveOwnerOfUser(userId.Value) is not null)
        {
            logger.LogWarning("{Provider} user {UserId} is in an application service's exclusive namespace; not created", provider, userId.Value);
            return CreateResult.NotAllowed;
        }
        try
        {
            await accounts.RegisterAsync(userId, password: null, isAdmin: false, deviceId: null, deviceDisplayName: null, inhibitLogin: true,
                wantsRefreshToken: false, async s =>
                {
                    await externalIds.AddAsync(s, provider, externalId, userId.Value);
                    if (displayName is { Length: > 0 })
                        await profiles.SetAsync(s, userId.Value, "displayname", JsonSerializer.Serialize(displayName));
                    if (email is not null)
                    {
                        var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
                        await threepids.AddAsync(s, userId.Value, "email", email, now, now);
                    }
                }, ct);
            logger.LogInformation("Created {UserId} for {Provider} identity {ExternalId}", userId.Value, provider, externalId);
            return CreateResult.Created;
        }
        catch (MatrixException e) when (e.Errcode == "M_USER_IN_USE")
        {
            return CreateResult.InUse;
        }
    }
}
