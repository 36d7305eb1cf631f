using System.Text.Json.Nodes;
using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>A homeserver with <c>email.enabled</c>, mailing through a real SMTP server (aiosmtpd), and an identity server stand-in.</summary>
public class EmailServerFixture(string engine) : IAsyncLifetime
{
    private TestDatabase? _database;
    public HomeserverProcess Server { get; private set; } = null!;
    public TestSmtpServer Smtp { get; private set; } = null!;
    public TestIdentityServer Identity { get; } = new();
    public MatrixClient Client => new(Server.BaseUrl, Server.ServerName);

    public async Task InitializeAsync()
    {
        Smtp = await TestSmtpServer.StartAsync();
        _database = await TestDatabase.CreateAsync(engine);
        Server = new HomeserverProcess(_database.Yaml, $"""
            email:
              enabled: true
              smtp_host: 127.0.0.1
              smtp_port: {Smtp.Port}
              notif_from: "%(app)s <noreply@spec.test>"
              app_name: SpecChat

            identity_servers:
              plain_http: true

            outbound_http:
              ip_range_allowlist: [127.0.0.0/8]

            """);
        await Server.StartAsync();
        Identity.HomeserverBaseUrl = Server.BaseUrl;
    }

    public async Task DisposeAsync()
    {
        await Server.DisposeAsync();
        await Identity.DisposeAsync();
        await Smtp.DisposeAsync();
        if (_database is not null)
            await _database.DisposeAsync();
    }
}

public sealed class SqliteEmailServer() : EmailServerFixture("sqlite");

public sealed class PostgresEmailServer() : EmailServerFixture("postgres");

/// <summary>
/// Spec: "Adding Account Administrative Contact Information", registration with <c>m.login.email.identity</c>, and
/// password reset by email, with validation mails delivered by a real SMTP server and their links followed; binding
/// 3PIDs at an identity server and undoing it on removal and deactivation.
/// </summary>
public abstract class EmailTests(EmailServerFixture fixture)
{
    private MatrixClient C => fixture.Client;

    private static string NewAddress() => $"{MatrixClient.UniqueName("mail")}@example.org";

    private static string NewSecret() => "secret-" + Guid.NewGuid().ToString("N");

    /// <summary>requestToken, then the link of the mail that arrives followed: the validated session's sid.</summary>
    private async Task<string> ValidateAsync(string path, string address, string clientSecret, string? token = null)
    {
        var request = await C.PostAsync(path, new { client_secret = clientSecret, email = address, send_attempt = 1 }, token);
        Assert.True(request.Status == 200, request.ToString());
        Assert.EndsWith("/_synapse/client/email/submit_token", request.Str("submit_url"));
        var mail = await fixture.Smtp.WaitForMailAsync(address);
        Assert.Equal("[SpecChat] " + (path.Contains("password") ? "Password reset" : "Validate your email"), mail.Headers["Subject"]);
        Assert.Equal("SpecChat <noreply@spec.test>", mail.Headers["From"]);
        var link = new Uri(mail.Link);
        using var http = new HttpClient();
        var page = await http.GetAsync(fixture.Server.BaseUrl + link.PathAndQuery);
        Assert.Equal(200, (int)page.StatusCode);
        Assert.Contains("validated", await page.Content.ReadAsStringAsync());
        return request.Str("sid");
    }

    [Fact]
    public async Task Capabilities_allow_3pid_changes_and_registration_offers_an_email_flow()
    {
        var user = await C.RegisterAsync();
        var capabilities = await C.GetAsync("/_matrix/client/v3/capabilities", user.AccessToken);
        Assert.True(capabilities.Body!["capabilities"]!["m.3pid_changes"]!["enabled"]!.GetValue<bool>());
        var flows = (await C.PostAsync("/_matrix/client/v3/register", new { username = MatrixClient.UniqueName() })).Body!["flows"]!.AsArray();
        Assert.Contains(flows, f => f!["stages"]!.AsArray().Select(s => s!.GetValue<string>()).SequenceEqual(["m.login.email.identity"]));
    }

    [Fact]
    public async Task An_address_is_added_after_its_mailed_link_is_followed_and_then_logs_in()
    {
        var user = await C.RegisterAsync();
        var address = NewAddress();
        var secret = NewSecret();
        var sid = await ValidateAsync("/_matrix/client/v3/account/3pid/email/requestToken", address.ToUpperInvariant(), secret);

        var wrongSecret = await C.WithPasswordAuthAsync(HttpMethod.Post, "/_matrix/client/v3/account/3pid/add",
            new JsonObject { ["client_secret"] = NewSecret(), ["sid"] = sid }, user);
        Assert.Equal("M_THREEPID_AUTH_FAILED", wrongSecret.Errcode);
        var added = await C.WithPasswordAuthAsync(HttpMethod.Post, "/_matrix/client/v3/account/3pid/add",
            new JsonObject { ["client_secret"] = secret, ["sid"] = sid }, user);
        Assert.True(added.Status == 200, added.ToString());

        var listed = (await C.GetAsync("/_matrix/client/v3/account/3pid", user.AccessToken)).Body!["threepids"]!.AsArray();
        var entry = Assert.Single(listed)!;
        Assert.Equal("email", entry["medium"]!.GetValue<string>());
        Assert.Equal(address, entry["address"]!.GetValue<string>());

        var login = await C.PostAsync("/_matrix/client/v3/login", new
        {
            type = "m.login.password", identifier = new { type = "m.id.thirdparty", medium = "email", address }, password = user.Password,
        });
        Assert.True(login.Status == 200, login.ToString());
        Assert.Equal(user.UserId, login.Str("user_id"));
        var deprecated = await C.PostAsync("/_matrix/client/v3/login", new { type = "m.login.password", medium = "email", address, password = "wrong" });
        Assert.Equal(403, deprecated.Status);

        var taken = await C.PostAsync("/_matrix/client/v3/register/email/requestToken", new { client_secret = NewSecret(), email = address, send_attempt = 1 });
        Assert.Equal("M_THREEPID_IN_USE", taken.Errcode);

        var deleted = await C.PostAsync("/_matrix/client/v3/account/3pid/delete", new { medium = "email", address }, user.AccessToken);
        Assert.Equal("no-support", deleted.Str("id_server_unbind_result"));
        Assert.Empty((await C.GetAsync("/_matrix/client/v3/account/3pid", user.AccessToken)).Body!["threepids"]!.AsArray());
    }

    [Fact]
    public async Task Registration_with_a_validated_address_adds_it_to_the_new_account()
    {
        var address = NewAddress();
        var secret = NewSecret();
        var localpart = MatrixClient.UniqueName();
        var first = await C.PostAsync("/_matrix/client/v3/register", new { username = localpart, password = "pw" });
        var session = first.Str("session");
        var sid = await ValidateAsync("/_matrix/client/v3/register/email/requestToken", address, secret);
        var done = await C.PostAsync("/_matrix/client/v3/register", new
        {
            username = localpart, password = "pw",
            auth = new { type = "m.login.email.identity", session, threepid_creds = new { sid, client_secret = secret } },
        });
        Assert.True(done.Status == 200, done.ToString());
        var listed = (await C.GetAsync("/_matrix/client/v3/account/3pid", done.Str("access_token"))).Body!["threepids"]!.AsArray();
        Assert.Equal(address, Assert.Single(listed)!["address"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_session_not_yet_validated_or_retried_sends_no_second_mail_and_proves_nothing()
    {
        var address = NewAddress();
        var secret = NewSecret();
        var request = await C.PostAsync("/_matrix/client/v3/register/email/requestToken", new { client_secret = secret, email = address, send_attempt = 1 });
        var again = await C.PostAsync("/_matrix/client/v3/register/email/requestToken", new { client_secret = secret, email = address, send_attempt = 1 });
        Assert.Equal(request.Str("sid"), again.Str("sid"));
        var mail = await fixture.Smtp.WaitForMailAsync(address);
        await Task.Delay(300);
        await Assert.ThrowsAnyAsync<Exception>(() => fixture.Smtp.WaitForMailAsync(address, TimeSpan.FromMilliseconds(200)));

        var localpart = MatrixClient.UniqueName();
        var first = await C.PostAsync("/_matrix/client/v3/register", new { username = localpart, password = "pw" });
        var early = await C.PostAsync("/_matrix/client/v3/register", new
        {
            username = localpart, password = "pw",
            auth = new { type = "m.login.email.identity", session = first.Str("session"), threepid_creds = new { sid = request.Str("sid"), client_secret = secret } },
        });
        Assert.Equal(401, early.Status);
        Assert.Empty(early.Body!["completed"]!.AsArray());

        // The token posted to submit_url works as the link does; a wrong one does not.
        var token = System.Web.HttpUtility.ParseQueryString(new Uri(mail.Link).Query)["token"]!;
        var wrong = await C.PostAsync("/_synapse/client/email/submit_token", new { sid = request.Str("sid"), client_secret = secret, token = token + "x" });
        Assert.False(wrong.Body!["success"]!.GetValue<bool>());
        var right = await C.PostAsync("/_synapse/client/email/submit_token", new { sid = request.Str("sid"), client_secret = secret, token });
        Assert.True(right.Body!["success"]!.GetValue<bool>());
    }

    [Fact]
    public async Task A_password_is_reset_by_email_without_an_access_token()
    {
        var user = await C.RegisterAsync();
        var address = NewAddress();
        var secret = NewSecret();
        var sid = await ValidateAsync("/_matrix/client/v3/account/3pid/email/requestToken", address, secret);
        Assert.Equal(200, (await C.WithPasswordAuthAsync(HttpMethod.Post, "/_matrix/client/v3/account/3pid/add",
            new JsonObject { ["client_secret"] = secret, ["sid"] = sid }, user)).Status);

        var unknown = await C.PostAsync("/_matrix/client/v3/account/password/email/requestToken", new { client_secret = secret, email = NewAddress(), send_attempt = 1 });
        Assert.Equal("M_THREEPID_NOT_FOUND", unknown.Errcode);
        var resetSecret = NewSecret();
        var resetSid = await ValidateAsync("/_matrix/client/v3/account/password/email/requestToken", address, resetSecret);
        var first = await C.PostAsync("/_matrix/client/v3/account/password", new { new_password = "brand new password" });
        Assert.Equal(401, first.Status);
        var reset = await C.PostAsync("/_matrix/client/v3/account/password", new
        {
            new_password = "brand new password",
            auth = new { type = "m.login.email.identity", session = first.Str("session"), threepid_creds = new { sid = resetSid, client_secret = resetSecret } },
        });
        Assert.True(reset.Status == 200, reset.ToString());
        Assert.Equal(401, (await C.GetAsync("/_matrix/client/v3/account/whoami", user.AccessToken)).Status);
        Assert.Equal(200, (await C.LoginAsync(user.UserId, "brand new password")).Status);
    }

    [Fact]
    public async Task Bad_requests_are_refused_before_any_mail_is_sent()
    {
        Assert.Equal("M_INVALID_PARAM", (await C.PostAsync("/_matrix/client/v3/register/email/requestToken",
            new { client_secret = "bad secret!", email = NewAddress(), send_attempt = 1 })).Errcode);
        Assert.Equal("M_INVALID_PARAM", (await C.PostAsync("/_matrix/client/v3/register/email/requestToken",
            new { client_secret = NewSecret(), email = "not an address\r\nBcc: x@example.org", send_attempt = 1 })).Errcode);
        Assert.Equal("M_MISSING_PARAM", (await C.PostAsync("/_matrix/client/v3/register/email/requestToken",
            new { client_secret = NewSecret(), email = NewAddress() })).Errcode);
        Assert.Equal("M_THREEPID_DENIED", (await C.PostAsync("/_matrix/client/v3/register/msisdn/requestToken",
            new { client_secret = NewSecret(), country = "GB", phone_number = "07700900000", send_attempt = 1 })).Errcode);
    }

    [Fact]
    public async Task Bindings_at_the_identity_server_are_undone_by_unbind_delete_and_deactivation()
    {
        var identity = fixture.Identity;
        var user = await C.RegisterAsync();
        async Task<string> BindAsync(string address)
        {
            var secret = NewSecret();
            var sid = identity.Validate("email", address, secret);
            var bound = await C.PostAsync("/_matrix/client/v3/account/3pid/bind", new
            {
                id_server = identity.Name, id_access_token = TestIdentityServer.AccessToken, sid, client_secret = secret,
            }, user.AccessToken);
            Assert.True(bound.Status == 200, bound.ToString());
            Assert.Equal(user.UserId, identity.Lookup("email", address));
            return address;
        }

        var first = await BindAsync(NewAddress());
        var unbound = await C.PostAsync("/_matrix/client/v3/account/3pid/unbind", new { medium = "email", address = first }, user.AccessToken);
        Assert.Equal("success", unbound.Str("id_server_unbind_result"));
        Assert.Null(identity.Lookup("email", first));

        var outOfBand = NewAddress();
        identity.BindOutOfBand("email", outOfBand, user.UserId);
        var deleted = await C.PostAsync("/_matrix/client/v3/account/3pid/delete",
            new { medium = "email", address = outOfBand, id_server = identity.Name }, user.AccessToken);
        Assert.Equal("success", deleted.Str("id_server_unbind_result"));
        Assert.Null(identity.Lookup("email", outOfBand));

        var last = await BindAsync(NewAddress());
        var deactivated = await C.WithPasswordAuthAsync(HttpMethod.Post, "/_matrix/client/v3/account/deactivate", new JsonObject(), user);
        Assert.Equal("success", deactivated.Str("id_server_unbind_result"));
        Assert.Null(identity.Lookup("email", last));
    }

    private async Task<string> PrivateRoomAsync(LoggedInUser creator) =>
        (await C.PostAsync("/_matrix/client/v3/createRoom", new { preset = "private_chat" }, creator.AccessToken)).Str("room_id");

    private Task<MatrixResponse> InviteByEmailAsync(LoggedInUser inviter, string roomId, string address) =>
        C.PostAsync($"/_matrix/client/v3/rooms/{Uri.EscapeDataString(roomId)}/invite", new
        {
            id_server = fixture.Identity.Name, id_access_token = TestIdentityServer.AccessToken, medium = "email", address,
        }, inviter.AccessToken);

    private async Task<string?> MembershipAsync(LoggedInUser reader, string roomId, string userId)
    {
        var state = await C.GetAsync($"/_matrix/client/v3/rooms/{Uri.EscapeDataString(roomId)}/state/m.room.member/{Uri.EscapeDataString(userId)}",
            reader.AccessToken);
        return state.Status == 200 ? state.Str("membership") : null;
    }

    [Fact]
    public async Task An_invite_to_a_bound_address_invites_its_user()
    {
        var inviter = await C.RegisterAsync();
        var invitee = await C.RegisterAsync();
        var address = NewAddress();
        fixture.Identity.BindOutOfBand("email", address, invitee.UserId);
        var roomId = await PrivateRoomAsync(inviter);
        Assert.Equal(200, (await InviteByEmailAsync(inviter, roomId, address)).Status);
        Assert.Equal("invite", await MembershipAsync(inviter, roomId, invitee.UserId));
    }

    [Theory]
    [InlineData("PUT")] // the spec's method
    [InlineData("POST")] // what Sydent sends
    public async Task An_invite_to_an_unbound_address_becomes_the_users_invite_when_the_identity_server_binds_it(string method)
    {
        var inviter = await C.RegisterAsync();
        var invitee = await C.RegisterAsync();
        var address = NewAddress();
        var roomId = await PrivateRoomAsync(inviter);
        Assert.Equal(200, (await InviteByEmailAsync(inviter, roomId, address)).Status);
        var state = (await C.GetAsync($"/_matrix/client/v3/rooms/{Uri.EscapeDataString(roomId)}/state", inviter.AccessToken)).Body!.AsArray();
        var thirdParty = Assert.Single(state, e => e!["type"]!.GetValue<string>() == "m.room.third_party_invite")!;
        Assert.Equal("B***", thirdParty["content"]!["display_name"]!.GetValue<string>());
        Assert.Equal(2, thirdParty["content"]!["public_keys"]!.AsArray().Count);

        var onbind = await fixture.Identity.BindAndNotifyAsync(fixture.Server.BaseUrl, "email", address, invitee.UserId, method: new HttpMethod(method));
        Assert.True(onbind.IsSuccessStatusCode);
        var member = await C.GetAsync($"/_matrix/client/v3/rooms/{Uri.EscapeDataString(roomId)}/state/m.room.member/{Uri.EscapeDataString(invitee.UserId)}",
            inviter.AccessToken);
        Assert.Equal("invite", member.Str("membership"));
        Assert.Equal("B***", member.Body!["third_party_invite"]!["display_name"]!.GetValue<string>());
        Assert.Equal(200, (await C.PostAsync($"/_matrix/client/v3/join/{Uri.EscapeDataString(roomId)}", new { }, invitee.AccessToken)).Status);
        Assert.Equal("join", await MembershipAsync(inviter, roomId, invitee.UserId));
    }

    [Fact]
    public async Task A_token_signed_by_an_unknown_or_revoked_key_invites_nobody()
    {
        var inviter = await C.RegisterAsync();
        var invitee = await C.RegisterAsync();
        var roomId = await PrivateRoomAsync(inviter);
        var strangerKey = Matrix.Federation.Crypto.Ed25519KeyPair.Generate("0");
        var address = NewAddress();
        Assert.Equal(200, (await InviteByEmailAsync(inviter, roomId, address)).Status);
        // The identity server is told the token was refused (as Synapse answers it).
        var refused = await fixture.Identity.BindAndNotifyAsync(fixture.Server.BaseUrl, "email", address, invitee.UserId, strangerKey);
        Assert.Equal(System.Net.HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.Null(await MembershipAsync(inviter, roomId, invitee.UserId));

        var revokedRoom = await PrivateRoomAsync(inviter);
        var other = NewAddress();
        Assert.Equal(200, (await InviteByEmailAsync(inviter, revokedRoom, other)).Status);
        var ephemeral = fixture.Identity.EphemeralKey;
        fixture.Identity.Revoke(ephemeral);
        Assert.Equal(System.Net.HttpStatusCode.Forbidden,
            (await fixture.Identity.BindAndNotifyAsync(fixture.Server.BaseUrl, "email", other, invitee.UserId, ephemeral)).StatusCode);
        Assert.Null(await MembershipAsync(inviter, revokedRoom, invitee.UserId));
        Assert.Equal(403, (await C.PostAsync($"/_matrix/client/v3/join/{Uri.EscapeDataString(revokedRoom)}", new { }, invitee.AccessToken)).Status);
    }

    [Fact]
    public async Task A_join_with_a_signed_third_party_invite_joins()
    {
        var inviter = await C.RegisterAsync();
        var invitee = await C.RegisterAsync();
        var roomId = await PrivateRoomAsync(inviter);
        Assert.Equal(200, (await InviteByEmailAsync(inviter, roomId, NewAddress())).Status);
        var state = (await C.GetAsync($"/_matrix/client/v3/rooms/{Uri.EscapeDataString(roomId)}/state", inviter.AccessToken)).Body!.AsArray();
        var token = state.Single(e => e!["type"]!.GetValue<string>() == "m.room.third_party_invite")!["state_key"]!.GetValue<string>();
        var signed = new JsonObject { ["mxid"] = invitee.UserId, ["sender"] = inviter.UserId, ["token"] = token };
        fixture.Identity.Sign(signed, fixture.Identity.LongTermKey);
        var join = await C.PostAsync($"/_matrix/client/v3/join/{Uri.EscapeDataString(roomId)}",
            new JsonObject { ["third_party_signed"] = signed }.ToJsonString(), invitee.AccessToken);
        Assert.True(join.Status == 200, join.ToString());
        Assert.Equal("join", await MembershipAsync(inviter, roomId, invitee.UserId));
    }
}

public sealed class EmailTestsSqlite(SqliteEmailServer fixture) : EmailTests(fixture), IClassFixture<SqliteEmailServer>;

public sealed class EmailTestsPostgres(PostgresEmailServer fixture) : EmailTests(fixture), IClassFixture<PostgresEmailServer>;
