using Matrix.AppServices.Registration;

namespace Matrix.Homeserver.Tests;

/// <summary>Registration files as bridges write them: parsed leniently, checked strictly where it matters.</summary>
public sealed class AppServiceRegistrationTests
{
    private const string Valid = """
        id: irc
        url: http://127.0.0.1:9999
        as_token: astoken
        hs_token: hstoken
        sender_localpart: ircbot
        rate_limited: false
        de.sorunome.msc2409.push_ephemeral: true
        some_bridge_specific_key: ignored
        protocols: [irc]
        namespaces:
          users:
            - exclusive: true
              regex: '@_irc_.*:example\.org'
          aliases:
            - exclusive: false
              regex: '#_irc_.*'
          rooms: []
        """;

    [Fact]
    public void A_registration_is_read_with_its_namespaces_and_flags()
    {
        var registration = RegistrationFile.Parse(Valid, "example.org");
        Assert.Equal("irc", registration.Id);
        Assert.Equal("@ircbot:example.org", registration.SenderUserId);
        Assert.False(registration.RateLimited);
        Assert.True(registration.ReceiveEphemeral);
        Assert.Equal(["irc"], registration.Protocols);
        Assert.True(registration.IsInterestedInUser("@_irc_bob:example.org"));
        Assert.True(registration.IsInterestedInUser("@ircbot:example.org"));
        Assert.False(registration.IsInterestedInUser("@bob:example.org"));
        // Matched from the start of the ID, as Synapse matches.
        Assert.False(registration.IsInterestedInUser("@x@_irc_bob:example.org"));
        Assert.True(registration.ClaimsUserExclusively("@_irc_bob:example.org"));
        Assert.True(registration.IsInterestedInAlias("#_irc_chan:example.org"));
        Assert.False(registration.ClaimsAliasExclusively("#_irc_chan:example.org"));
    }

    [Theory]
    [InlineData("id: \"\"", "'id' is required")]
    [InlineData("url: ftp://example.org", "'url' must be an http(s) URL")]
    [InlineData("rate_limited: maybe", "'rate_limited' must be true or false")]
    [InlineData("hs_token: astoken", "must differ")]
    public void Bad_fields_are_errors_that_name_them(string replacement, string message)
    {
        var key = replacement[..replacement.IndexOf(':')];
        var yaml = string.Join('\n', Valid.Split('\n').Select(line => line.StartsWith(key + ":") ? replacement : line));
        if (!yaml.Contains(replacement))
            yaml += "\n" + replacement;
        var error = Assert.Throws<RegistrationException>(() => RegistrationFile.Parse(yaml, "example.org"));
        Assert.Contains(message, error.Message);
    }

    [Fact]
    public void An_invalid_regex_and_invalid_yaml_are_refused()
    {
        Assert.Contains("regex", Assert.Throws<RegistrationException>(() => RegistrationFile.Parse(Valid.Replace("'#_irc_.*'", "'#_irc_(['"), "example.org")).Message);
        Assert.Contains("YAML", Assert.Throws<RegistrationException>(() => RegistrationFile.Parse("id: [unclosed", "example.org")).Message);
    }

    [Fact]
    public void Two_services_may_not_share_an_id_or_a_token()
    {
        var first = RegistrationFile.Parse(Valid, "example.org");
        var sameId = RegistrationFile.Parse(Valid.Replace("as_token: astoken", "as_token: other").Replace("hs_token: hstoken", "hs_token: other2")
            .Replace("sender_localpart: ircbot", "sender_localpart: bot2"), "example.org");
        Assert.Contains("same id", Assert.Throws<RegistrationException>(() => RegistrationFile.ValidateSet([first, sameId])).Message);
        var crossed = RegistrationFile.Parse(Valid.Replace("id: irc", "id: other").Replace("as_token: astoken", "as_token: hstoken")
            .Replace("hs_token: hstoken", "hs_token: x").Replace("sender_localpart: ircbot", "sender_localpart: bot2"), "example.org");
        Assert.Throws<RegistrationException>(() => RegistrationFile.ValidateSet([first, crossed]));
    }
}
