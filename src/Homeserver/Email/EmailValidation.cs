using System.Security.Cryptography;
using System.Text;
using Matrix.Homeserver.Accounts;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Email;

/// <summary>An address proved by a validation session.</summary>
public sealed record ValidatedThreepid(string Medium, string Address, long ValidatedTs);

/// <summary>
/// Validation of email addresses by this server (Synapse's "local" threepid behaviour): <c>requestToken</c> mails a link
/// with a token, opening it (or posting the token to the <c>submit_url</c>) validates the session, and the session's
/// client secret and ID then prove the address to registration, <c>/account/3pid/add</c> and password reset.
/// </summary>
public sealed class EmailValidation(
    Database db, ThreepidStore store, SmtpMailer mailer, ValidationMails mails, HomeserverConfig config, TimeProvider clock,
    ILogger<EmailValidation> logger)
{
    public const string SubmitPath = "/_synapse/client/email/submit_token";
    private const int MaxClientSecretLength = 255;
    private const int MaxNextLinkLength = 2048;

    public string SubmitUrl => config.EffectivePublicBaseurl + SubmitPath.TrimStart('/');

    private long Now => clock.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>
    /// Starts (or continues) a session and mails its token, unless <paramref name="sendAttempt"/> is not newer than the
    /// last one of the session (a retried request: the same session, no second mail). Returns the session ID.
    /// </summary>
    public async Task<string> RequestTokenAsync(ValidationPurpose purpose, string address, string clientSecret, long sendAttempt, string? nextLink,
        CancellationToken ct)
    {
        var now = Now;
        var purposeName = purpose.ToString();
        var existing = await db.ReadAsync(s => store.FindSessionAsync(s, clientSecret, "email", address, purposeName, now), ct);
        if (existing is not null && sendAttempt <= existing.SendAttempt)
            return existing.SessionId;
        var token = RandomNumberGenerator.GetString("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 32);
        var sessionId = existing?.SessionId ?? Secrets.NewSessionId();
        var link = $"{SubmitUrl}?sid={Uri.EscapeDataString(sessionId)}&client_secret={Uri.EscapeDataString(clientSecret)}&token={token}";
        var (subject, text) = mails.Compose(purpose, link);
        try
        {
            await mailer.SendAsync(address, subject, text, ct);
        }
        catch (MailDeliveryException e)
        {
            logger.LogWarning("Validation mail not sent: {Reason}", e.Message);
            throw new MatrixException(500, "M_UNKNOWN", "Unable to send the validation email.");
        }
        var expires = now + config.Email.ValidationTokenLifetimeMs;
        await db.WriteAsync(s => existing is null
            ? store.InsertSessionAsync(s, new ThreepidSessionRow
            {
                SessionId = sessionId, Medium = "email", Address = address, ClientSecret = clientSecret, Purpose = purposeName,
                TokenHash = Secrets.Hash(token), SendAttempt = sendAttempt, NextLink = nextLink, CreatedTs = now, ExpiresTs = expires,
            })
            : store.RenewSessionAsync(s, sessionId, Secrets.Hash(token), sendAttempt, nextLink, expires), ct);
        return sessionId;
    }

    /// <summary>Validates a session with the token from its mail; the session's next_link on success, null when it has none.</summary>
    public async Task<(bool Valid, string? NextLink)> SubmitTokenAsync(string sessionId, string clientSecret, string token, CancellationToken ct)
    {
        var session = await db.ReadAsync(s => store.GetSessionAsync(s, sessionId), ct);
        if (session is null || session.ExpiresTs <= Now || !SameSecret(session.ClientSecret, clientSecret) || !SameSecret(session.TokenHash, Secrets.Hash(token)))
            return (false, null);
        await db.WriteAsync(s => store.MarkValidatedAsync(s, sessionId, Now), ct);
        return (true, session.NextLink);
    }

    /// <summary>The address a validated session proves, for <paramref name="purpose"/>; 400 M_THREEPID_AUTH_FAILED otherwise.</summary>
    public async Task<ValidatedThreepid> ValidatedAsync(string sessionId, string clientSecret, ValidationPurpose purpose, CancellationToken ct)
    {
        var session = await db.ReadAsync(s => store.GetSessionAsync(s, sessionId), ct);
        if (session is null || !SameSecret(session.ClientSecret, clientSecret) || session.Purpose != purpose.ToString())
            throw new MatrixException(400, "M_THREEPID_AUTH_FAILED", "No validated 3pid session found.");
        if (session.ValidatedTs is not { } validated)
            throw new MatrixException(400, "M_THREEPID_AUTH_FAILED", "This email address has not been validated yet.");
        return new ValidatedThreepid(session.Medium, session.Address, validated);
    }

    /// <summary>Forgets a session once it has served its purpose, so it cannot be replayed.</summary>
    public Task ConsumeAsync(DbSession s, string sessionId) => store.DeleteSessionAsync(s, sessionId);

    /// <summary>Checks the fields every requestToken takes; the canonical address.</summary>
    public static string CheckRequest(string email, string clientSecret, string? nextLink)
    {
        CheckClientSecret(clientSecret);
        if (nextLink is not null && (nextLink.Length > MaxNextLinkLength || !Uri.TryCreate(nextLink, UriKind.Absolute, out var link)
            || link.Scheme is not ("http" or "https")))
            throw MatrixException.InvalidParam("next_link must be an absolute http(s) URL.");
        return MailAddresses.Canonicalise(email) ?? throw MatrixException.InvalidParam("Unable to parse email address.");
    }

    /// <summary>Spec: a client secret is 1 to 255 characters of <c>[0-9a-zA-Z.=_-]</c>.</summary>
    public static void CheckClientSecret(string clientSecret)
    {
        if (clientSecret.Length is 0 or > MaxClientSecretLength || !clientSecret.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '=' or '_' or '-'))
            throw MatrixException.InvalidParam("Invalid client_secret.");
    }

    private static bool SameSecret(string a, string b) =>
        CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(a), Encoding.UTF8.GetBytes(b));
}
