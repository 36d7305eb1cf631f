using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Email;
using Matrix.Homeserver.Http;

namespace Matrix.Homeserver.Accounts;

/// <summary>
/// Spec: Adding account administrative contact information (3PIDs), and the requestToken endpoints of registration and
/// password reset. With <c>email.enabled</c> this server validates email addresses itself (mailing a link to
/// <see cref="EmailValidation.SubmitPath"/>); phone numbers are never supported. Binding goes to the identity server
/// the client names.
/// </summary>
public sealed class ThirdPartyIdEndpoints(
    Authenticator authenticator, JsonBody json, UserInteractiveAuth uia, ThreepidService threepids, EmailValidation validation,
    RateLimiter limiter, HomeserverConfig config) : IEndpoints
{
    public void Map(IEndpointRouteBuilder app)
    {
        app.MapV3("GET", "account/3pid", ListAsync);
        app.MapV3("POST", "account/3pid", AddDeprecatedAsync);
        app.MapV3("POST", "account/3pid/add", AddAsync);
        app.MapV3("POST", "account/3pid/delete", DeleteAsync);
        // SyTest and older clients still call the bind endpoints by their unstable names, as Synapse serves them.
        foreach (var prefix in new[] { "v3", "r0", "unstable" })
        {
            app.MapMethods($"{Routes.ClientPrefix}/{prefix}/account/3pid/bind", ["POST"], BindAsync);
            app.MapMethods($"{Routes.ClientPrefix}/{prefix}/account/3pid/unbind", ["POST"], UnbindAsync);
        }
        app.MapV3("POST", "account/3pid/email/requestToken", context => RequestEmailTokenAsync(context, ValidationPurpose.AddThreepid));
        app.MapV3("POST", "register/email/requestToken", context => RequestEmailTokenAsync(context, ValidationPurpose.Registration));
        app.MapV3("POST", "account/password/email/requestToken", context => RequestEmailTokenAsync(context, ValidationPurpose.PasswordReset));
        foreach (var path in new[] { "account/3pid", "register", "account/password" })
            app.MapV3("POST", $"{path}/msisdn/requestToken", RefuseTokenAsync);
        app.MapMethods(EmailValidation.SubmitPath, ["GET"], SubmitFromLinkAsync);
        app.MapMethods(EmailValidation.SubmitPath, ["POST"], SubmitTokenAsync);
    }

    private async Task ListAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        await context.WriteJsonAsync(new JsonObject { ["threepids"] = await threepids.ListAsync(requester.UserId.Value, context.RequestAborted) });
    }

    /// <summary>Spec: <c>/account/3pid/add</c>, re-authenticated: attaches the address a validation session proved.</summary>
    private async Task AddAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        requester.EnsureNotSuspended();
        var body = await json.ReadObjectAsync(context);
        RequireEmail();
        var clientSecret = body.RequiredString("client_secret");
        var sid = body.RequiredString("sid");
        EmailValidation.CheckClientSecret(clientSecret);
        var authorisation = await uia.ReauthenticateAsync(context, body, requester);
        await AttachAsync(requester, sid, clientSecret, s => uia.FinishAsync(s, authorisation), context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject());
    }

    /// <summary>
    /// The deprecated <c>POST /account/3pid</c> (Synapse still serves it, SyTest uses it): <c>three_pid_creds</c> of a
    /// validated session, and <c>bind</c> to also bind it at the identity server.
    /// </summary>
    private async Task AddDeprecatedAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        requester.EnsureNotSuspended();
        var body = await json.ReadObjectAsync(context);
        RequireEmail();
        var creds = body.OptionalObject("three_pid_creds") ?? body.OptionalObject("threePidCreds") ?? throw MatrixException.MissingParam("three_pid_creds");
        var clientSecret = creds.RequiredString("client_secret");
        var sid = creds.RequiredString("sid");
        EmailValidation.CheckClientSecret(clientSecret);
        await AttachAsync(requester, sid, clientSecret, alsoInTransaction: null, context.RequestAborted);
        if (body.OptionalBool("bind") == true && creds.OptionalString("id_server") is { } idServer)
            await threepids.BindAsync(requester.UserId.Value, idServer, creds.OptionalString("id_access_token") ?? throw MatrixException.MissingParam("id_access_token"),
                sid, clientSecret, context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject());
    }

    private async Task AttachAsync(Requester requester, string sid, string clientSecret, Func<Storage.DbSession, Task>? alsoInTransaction, CancellationToken ct)
    {
        var proved = await validation.ValidatedAsync(sid, clientSecret, ValidationPurpose.AddThreepid, ct);
        await threepids.AddInTransactionAsync(requester.UserId.Value, proved, async s =>
        {
            await validation.ConsumeAsync(s, sid);
            if (alsoInTransaction is not null)
                await alsoInTransaction(s);
        }, ct);
    }

    private async Task DeleteAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        var body = await json.ReadObjectAsync(context);
        var (medium, address, idServer) = ReadThreepid(body);
        var result = await threepids.DeleteAsync(requester.UserId.Value, medium, address, idServer, context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject { ["id_server_unbind_result"] = result });
    }

    /// <summary>Spec: <c>/account/3pid/bind</c>: the identity server binds the 3PID its own session validated.</summary>
    private async Task BindAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        var body = await json.ReadObjectAsync(context);
        var clientSecret = body.RequiredString("client_secret");
        EmailValidation.CheckClientSecret(clientSecret);
        await threepids.BindAsync(requester.UserId.Value, body.RequiredString("id_server"), body.RequiredString("id_access_token"),
            body.RequiredString("sid"), clientSecret, context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject());
    }

    private async Task UnbindAsync(HttpContext context)
    {
        var requester = await authenticator.AuthenticateAsync(context);
        var body = await json.ReadObjectAsync(context);
        var (medium, address, idServer) = ReadThreepid(body);
        var result = await threepids.UnbindAsync(requester.UserId.Value, medium, address, idServer, context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject { ["id_server_unbind_result"] = result });
    }

    private static (string Medium, string Address, string? IdServer) ReadThreepid(JsonElement body)
    {
        var medium = body.RequiredString("medium");
        var address = body.RequiredString("address");
        // Email addresses are kept canonical (lower-case), as at validation.
        return (medium, medium == "email" ? MailAddresses.Canonicalise(address) ?? address : address, body.OptionalString("id_server"));
    }

    private async Task RequestEmailTokenAsync(HttpContext context, ValidationPurpose purpose)
    {
        var body = await json.ReadObjectAsync(context);
        if (!config.Email.Enabled)
            throw Denied();
        var clientSecret = body.RequiredString("client_secret");
        var email = body.RequiredString("email");
        var sendAttempt = body.OptionalInteger("send_attempt") ?? throw MatrixException.MissingParam("send_attempt");
        var nextLink = body.OptionalString("next_link");
        var address = EmailValidation.CheckRequest(email, clientSecret, nextLink);
        limiter.Check("3pid-request-token", context.ClientIp(), config.RateLimits.Registration);
        if (purpose == ValidationPurpose.Registration && !config.Registration.Enabled)
            throw MatrixException.Forbidden("Registration has been disabled.");
        var owner = await threepids.OwnerOfAsync("email", address, context.RequestAborted);
        if (purpose == ValidationPurpose.PasswordReset ? owner is null : owner is not null)
            throw purpose == ValidationPurpose.PasswordReset
                ? new MatrixException(400, "M_THREEPID_NOT_FOUND", "No account has this email address.")
                : ThreepidService.InUse();
        var sid = await validation.RequestTokenAsync(purpose, address, clientSecret, sendAttempt, nextLink, context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject { ["sid"] = sid, ["submit_url"] = validation.SubmitUrl });
    }

    private async Task RefuseTokenAsync(HttpContext context)
    {
        await json.ReadObjectAsync(context);
        throw Denied();
    }

    /// <summary>The link in a validation mail: validates, then sends the browser to the client's next_link or shows a page.</summary>
    private async Task SubmitFromLinkAsync(HttpContext context)
    {
        var (valid, nextLink) = await validation.SubmitTokenAsync(context.Query("sid"), context.Query("client_secret"), context.Query("token"),
            context.RequestAborted);
        if (valid && nextLink is not null)
        {
            context.Response.Redirect(nextLink);
            return;
        }
        var message = valid
            ? "Your email address has been validated. Return to your Matrix client to continue."
            : "This validation link is invalid or has expired. Ask your Matrix client for a new one.";
        var clientLink = valid && config.Email.ClientBaseUrl is { } client
            ? $"<p><a href=\"{WebUtility.HtmlEncode(client)}\">Open {WebUtility.HtmlEncode(config.Email.AppName)}</a></p>"
            : "";
        context.Response.StatusCode = valid ? 200 : 400;
        context.Response.ContentType = "text/html; charset=utf-8";
        await context.Response.WriteAsync(
            $"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{WebUtility.HtmlEncode(config.Email.AppName)}</title></head>"
            + $"<body><p>{message}</p>{clientLink}</body></html>", context.RequestAborted);
    }

    /// <summary>The <c>submit_url</c> a client posts the token to, as the identity service's <c>/validate/email/submitToken</c>.</summary>
    private async Task SubmitTokenAsync(HttpContext context)
    {
        var body = await json.ReadObjectAsync(context);
        var (valid, _) = await validation.SubmitTokenAsync(body.RequiredString("sid"), body.RequiredString("client_secret"), body.RequiredString("token"),
            context.RequestAborted);
        await context.WriteJsonAsync(new JsonObject { ["success"] = valid });
    }

    private void RequireEmail()
    {
        if (!config.Email.Enabled)
            throw Denied();
    }

    private static MatrixException Denied() =>
        new(403, "M_THREEPID_DENIED", "This server does not validate email addresses or phone numbers.");
}
