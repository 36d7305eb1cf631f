using System.Security.Cryptography;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Accounts;

/// <summary>Registration tokens (m.login.registration_token): validity checks and the operator's management of them.</summary>
public sealed class RegistrationTokenService(Database db, RegistrationTokenStore store, TimeProvider clock)
{
    public const int MaxTokenLength = 64;
    private const string TokenAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~-";

    private long Now => clock.GetUtcNow().ToUnixTimeMilliseconds();

    public async Task<bool> IsUsableAsync(string token, CancellationToken ct) =>
        token.Length <= MaxTokenLength && (await db.ReadAsync(s => store.GetAsync(s, token), ct))?.IsUsable(Now) == true;

    public Task<IEnumerable<RegistrationTokenRow>> ListAsync(CancellationToken ct) => db.ReadAsync(s => store.ListAsync(s), ct);

    public async Task<RegistrationTokenRow> GetAsync(string token, CancellationToken ct) =>
        await db.ReadAsync(s => store.GetAsync(s, token), ct) ?? throw MatrixException.NotFound("No such registration token.");

    public async Task<RegistrationTokenRow> CreateAsync(string? token, long length, long? usesAllowed, long? expiryTime, CancellationToken ct)
    {
        if (token is not null && (token.Length is 0 or > MaxTokenLength || !token.All(TokenAlphabet.Contains)))
            throw MatrixException.InvalidParam($"token must be 1 to {MaxTokenLength} characters of [A-Za-z0-9._~-].");
        if (length is < 1 or > MaxTokenLength)
            throw MatrixException.InvalidParam($"length must be between 1 and {MaxTokenLength}.");
        ValidateLimits(usesAllowed, expiryTime);
        token ??= RandomNumberGenerator.GetString(TokenAlphabet, (int)length);
        if (!await db.WriteAsync(s => store.InsertAsync(s, token, usesAllowed, expiryTime), ct))
            throw MatrixException.InvalidParam($"Token already exists: {token}");
        return await GetAsync(token, ct);
    }

    public async Task<RegistrationTokenRow> UpdateAsync(string token, long? usesAllowed, long? expiryTime, CancellationToken ct)
    {
        ValidateLimits(usesAllowed, expiryTime);
        if (!await db.WriteAsync(s => store.UpdateAsync(s, token, usesAllowed, expiryTime), ct))
            throw MatrixException.NotFound("No such registration token.");
        return await GetAsync(token, ct);
    }

    public async Task DeleteAsync(string token, CancellationToken ct)
    {
        if (!await db.WriteAsync(s => store.DeleteAsync(s, token), ct))
            throw MatrixException.NotFound("No such registration token.");
    }

    private void ValidateLimits(long? usesAllowed, long? expiryTime)
    {
        if (usesAllowed is < 0)
            throw MatrixException.InvalidParam("uses_allowed must be a non-negative integer or null.");
        if (expiryTime is { } expiry && expiry < Now)
            throw MatrixException.InvalidParam("expiry_time must not be in the past.");
    }
}
