using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary><c>/health</c> follows the database: 503 once PostgreSQL no longer has the server's database.</summary>
public sealed class AdminApiHealthTestsPostgres
{
    [Fact]
    public async Task Health_answers_503_when_the_database_is_gone()
    {
        var database = await TestDatabase.CreateAsync("postgres");
        await using var server = new HomeserverProcess(database.Yaml);
        await server.StartAsync();
        var client = new MatrixClient(server.BaseUrl, server.ServerName);
        Assert.Equal(200, (await client.GetAsync("/health")).Status);

        await database.DisposeAsync();
        var health = await client.GetAsync("/health");
        Assert.Equal(503, health.Status);
        Assert.Equal("text/plain", health.Raw.Content.Headers.ContentType!.MediaType);
    }
}
