// Ports the OS says are free, for servers a test starts in another process (in-process servers listen on 0 and
// read their port back). Fixed numbers collide when two runs share a machine. A port is released before the caller
// binds it, so another program could take it in between: rare, and the test then fails at start-up, loudly.
import net from "net";

// `count` distinct ports: all are held open until every one is known, so the OS cannot hand out one twice.
export async function freePorts(count: number): Promise<number[]> {
	const servers = await Promise.all(
		Array.from(
			{ length: count },
			() =>
				new Promise<net.Server>((resolve, reject) => {
					const server = net.createServer();
					server.once("error", reject);
					server.listen(0, "127.0.0.1", () => resolve(server));
				})
		)
	);
	const ports = servers.map(s => (s.address() as net.AddressInfo).port);
	await Promise.all(servers.map(s => new Promise(r => s.close(r))));
	return ports;
}

export const freePort = async (): Promise<number> => (await freePorts(1))[0];
