namespace Matrix.Homeserver.Config;

/// <summary>One upstream OpenID Connect provider people may sign in through (an entry of Synapse's <c>oidc_providers</c>).</summary>
public sealed class OidcProviderConfig
{
    /// <summary>Names the provider in URLs and in the accounts linked to it; served as <c>oidc-{idp_id}</c> (<c>oidc</c> stays as it is), as Synapse does.</summary>
    public string IdpId { get; set; } = "oidc";
    public string IdpName { get; set; } = "OIDC";
    /// <summary>An <c>mxc://</c> icon clients show on the provider's button.</summary>
    public string? IdpIcon { get; set; }
    /// <summary>A hint for clients' button styling (spec: <c>brand</c>, e.g. google, github, apple).</summary>
    public string? IdpBrand { get; set; }
    /// <summary>Read the provider's endpoints and keys from <c>{issuer}/.well-known/openid-configuration</c>.</summary>
    public bool Discover { get; set; } = true;
    public string Issuer { get; set; } = "";
    public string ClientId { get; set; } = "";
    public string? ClientSecret { get; set; }
    /// <summary>A key to sign a JWT with instead of a fixed secret (used as the secret, or as the assertion of private_key_jwt).</summary>
    public ClientSecretJwtKeyConfig? ClientSecretJwtKey { get; set; }
    /// <summary>client_secret_basic (default), client_secret_post, private_key_jwt or none.</summary>
    public string ClientAuthMethod { get; set; } = "client_secret_basic";
    public List<string> Scopes { get; set; } = ["openid"];
    /// <summary>auto (PKCE when the provider advertises S256), always, or never.</summary>
    public string PkceMethod { get; set; } = "auto";
    /// <summary>Without discovery: the provider's endpoints.</summary>
    public string? AuthorizationEndpoint { get; set; }
    public string? TokenEndpoint { get; set; }
    public string? UserinfoEndpoint { get; set; }
    public string? JwksUri { get; set; }
    /// <summary>Accept a discovery document that breaks the spec's rules (e.g. an http issuer). ID tokens are checked all the same.</summary>
    public bool SkipVerification { get; set; }
    /// <summary>auto (the ID token's claims when openid is asked, else userinfo) or userinfo_endpoint (always userinfo).</summary>
    public string UserProfileMethod { get; set; } = "auto";
    /// <summary>A first sign-in whose mapped localpart is an existing account signs in to (and links) that account.</summary>
    public bool AllowExistingUsers { get; set; }
    /// <summary>Create accounts at first sign-in; when false, only linked (or, with allow_existing_users, existing) accounts sign in.</summary>
    public bool EnableRegistration { get; set; } = true;
    public OidcUserMappingConfig UserMappingProvider { get; set; } = new();
    /// <summary>Claims a user must have to sign in: each one's <c>value</c>, or one of <c>one_of</c>; a list claim matches when it contains it.</summary>
    public List<OidcAttributeRequirement> AttributeRequirements { get; set; } = [];

    public string EffectiveIdpId => IdpId == "oidc" ? IdpId : "oidc-" + IdpId;
}

public sealed class ClientSecretJwtKeyConfig
{
    /// <summary>A PEM private key (RSA or EC), inline or in <see cref="KeyFile"/>.</summary>
    public string? Key { get; set; }
    public string? KeyFile { get; set; }
    /// <summary>JWT header; <c>alg</c> (RS256, ES256, ...) is required, <c>kid</c> is usual.</summary>
    public Dictionary<string, string> JwtHeader { get; set; } = [];
    /// <summary>Extra claims (e.g. <c>iss</c> for Apple); iat and exp are set when the JWT is made.</summary>
    public Dictionary<string, string> JwtPayload { get; set; } = [];
}

/// <summary>Synapse's <c>user_mapping_provider.config</c>: templates over the provider's claims (<c>{{ user.claim }}</c>).</summary>
public sealed class OidcUserMappingConfig
{
    public OidcUserMappingTemplates Config { get; set; } = new();
}

public sealed class OidcUserMappingTemplates
{
    /// <summary>The claim that identifies a user at the provider for good.</summary>
    public string SubjectClaim { get; set; } = "sub";
    public string LocalpartTemplate { get; set; } = "{{ user.preferred_username }}";
    public string? DisplayNameTemplate { get; set; }
    public string? EmailTemplate { get; set; }
}

public sealed class OidcAttributeRequirement
{
    public string Attribute { get; set; } = "";
    public string? Value { get; set; }
    public List<string>? OneOf { get; set; }
}
