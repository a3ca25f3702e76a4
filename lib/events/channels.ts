// @moleculer/channels set-up: the AMQP adapter tuned for durability in cluster mode, the in-process adapter embedded.
// The package's type declarations do not describe its callable default export.
const ChannelsMiddleware: (opts: unknown) => any = require("@moleculer/channels").Middleware;
import type { Config } from "../config";
import { EXCHANGE_OPTIONS, QUEUE_OPTIONS } from "./topology";

export function channelsMiddleware(config: Config) {
	const adapter = config.channelsUrl
		? {
				type: "AMQP",
				options: {
					amqp: {
						url: config.channelsUrl,
						socketOptions: { noDelay: true },
						queueOptions: QUEUE_OPTIONS,
						exchangeOptions: EXCHANGE_OPTIONS,
						messageOptions: { persistent: true },
						// Publishing to a missing exchange closes the AMQP channel: always assert it first.
						publishAssertExchange: { enabled: true, exchangeOptions: EXCHANGE_OPTIONS }
					},
					maxInFlight: config.channelsMaxInFlight,
					maxRetries: config.channelsMaxRetries
				}
			}
		: { type: "Fake", options: { maxInFlight: config.channelsMaxInFlight } };
	return ChannelsMiddleware({ adapter } as any);
}
