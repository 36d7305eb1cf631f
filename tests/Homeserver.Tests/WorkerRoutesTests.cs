using Matrix.Homeserver.Config;
using Matrix.Homeserver.Replication;
using Microsoft.AspNetCore.Http;

namespace Matrix.Homeserver.Tests;

public sealed class WorkerRoutesTests
{
    [Theory]
    [InlineData("PUT", "/_matrix/client/v3/rooms/!r:hs/send/m.room.message/t1", true)]
    [InlineData("PUT", "/_matrix/client/r0/rooms/!r:hs/state/m.room.topic", true)]
    [InlineData("PUT", "/_matrix/client/v3/rooms/!r:hs/state/m.room.topic/", true)]
    [InlineData("PUT", "/_matrix/client/v3/rooms/!r:hs/state/org.example.widget/w1", true)]
    [InlineData("PUT", "/_matrix/client/v3/rooms/!r:hs/redact/$e/t2", true)]
    // Membership changes stay with the main process, which handles joins, invites and their federation.
    [InlineData("PUT", "/_matrix/client/v3/rooms/!r:hs/state/m.room.member/@u:hs", false)]
    [InlineData("PUT", "/_matrix/client/v3/rooms/!r:hs/state/m.room.member", false)]
    [InlineData("PUT", "/_matrix/client/v3/rooms/!r:hs/state/m.room.membership.extra", true)]
    [InlineData("POST", "/_matrix/client/v3/rooms/!r:hs/send/m.room.message", false)]
    [InlineData("GET", "/_matrix/client/v3/rooms/!r:hs/state/m.room.topic", false)]
    [InlineData("POST", "/_matrix/client/v3/rooms/!r:hs/join", false)]
    [InlineData("POST", "/_matrix/client/v3/createRoom", false)]
    [InlineData("GET", "/health", true)]
    // Other servers' transactions; their joins, invites and reads are not a writer's.
    [InlineData("PUT", "/_matrix/federation/v1/send/1234", true)]
    [InlineData("GET", "/_matrix/federation/v1/send/1234", false)]
    [InlineData("PUT", "/_matrix/federation/v2/send_join/!r:hs/$e", false)]
    [InlineData("PUT", "/_matrix/federation/v2/invite/!r:hs/$e", false)]
    [InlineData("GET", "/_matrix/federation/v1/event/$e", false)]
    public void An_event_writer_serves_its_rooms_sends_and_other_servers_transactions_and_nothing_else(string method, string path, bool served) =>
        Assert.Equal(served, WorkerRoutes.Serves(WorkerConfig.EventWriterRole, method, new PathString(path)));
}
