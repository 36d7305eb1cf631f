using System.Text.Json;
using Matrix.Federation.Identifiers;
using Matrix.Homeserver.Accounts.Ldap;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Accounts;

/// <summary>
/// <c>m.login.password</c>, for login and for the password stage of user-interactive auth: the local password, then
/// (with <c>ldap.enabled</c>) the directory. With the directory on, local passwords count only while
/// <c>ldap.local_password_fallback</c> is set, and are tried first so a local admin gets in while the directory is
/// down. A directory user's account is created at their first login, with the directory's display name. A login may
/// name the account by an email address on it.
/// </summary>
public sealed class PasswordLogin(
    AccountService accounts, LdapPasswordChecker directory, ExternalIdStore externalIds, ExternalAccounts externalAccounts, Database db,
    ThreepidStore threepids, HomeserverConfig config)
{
    private bool LocalPasswordsCount => !config.Ldap.Enabled || config.Ldap.LocalPasswordFallback;

    /// <summary>The user ID the login proves, or null for a wrong name or password.</summary>
    public async Task<string?> LoginAsync(JsonElement auth, string password, CancellationToken ct)
    {
        if (LoginIdentifier.ThirdParty(auth) is var (medium, address))
        {
            // A 3PID names the local account it is on; the directory knows nothing of those.
            var owner = await db.ReadAsync(s => threepids.OwnerOfAsync(s, medium, address), ct);
            return owner is not null && LocalPasswordsCount ? await accounts.CheckPasswordAsync(owner, password, ct) : null;
        }
        var claimed = LoginIdentifier.UserFromAuth(auth, config.ServerName);
        if (claimed is not null && LocalPasswordsCount && await accounts.CheckPasswordAsync(claimed, password, ct) is { } local)
            return local;
        if (!config.Ldap.Enabled || password.Length > AccountService.MaxPasswordLength)
            return null;
        var entry = await AskDirectoryAsync(LoginIdentifier.LoginName(auth), password, ct);
        return entry is null ? null : await EnsureAccountAsync(entry, ct);
    }

    /// <summary>Whether the password is the logged-in user's (the password stage of user-interactive auth).</summary>
    public async Task<bool> VerifyAsync(UserId userId, string password, CancellationToken ct)
    {
        if (LocalPasswordsCount && await accounts.CheckPasswordAsync(userId.Value, password, ct) is not null)
            return true;
        if (!config.Ldap.Enabled || password.Length > AccountService.MaxPasswordLength
            || !await db.ReadAsync(s => externalIds.IsLinkedAsync(s, ExternalIdStore.Ldap, userId.Value), ct))
            return false;
        return (await AskDirectoryAsync(userId.Localpart, password, ct))?.Localpart == userId.Localpart;
    }

    /// <summary>Whether the account's password lives in the directory (it cannot be changed here).</summary>
    public async Task<bool> IsDirectoryAccountAsync(string userId, CancellationToken ct) =>
        config.Ldap.Enabled && await db.ReadAsync(s => externalIds.IsLinkedAsync(s, ExternalIdStore.Ldap, userId), ct);

    private async Task<DirectoryUser?> AskDirectoryAsync(string loginName, string password, CancellationToken ct)
    {
        try
        {
            return await directory.CheckAsync(loginName, password, ct);
        }
        catch (DirectoryUnavailableException e)
        {
            throw new MatrixException(503, "M_UNKNOWN", $"{e.Message} Please try again later.");
        }
    }

    /// <summary>The entry's account: created (linked, with its display name) at the first login.</summary>
    private Task<string?> EnsureAccountAsync(DirectoryUser entry, CancellationToken ct) =>
        externalAccounts.EnsureAsync(ExternalIdStore.Ldap, entry.Dn, entry.Localpart, entry.DisplayName, ct);
}
