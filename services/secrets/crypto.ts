// Envelope encryption. The master key (KEK) never touches the database; it wraps one data key (DEK) per
// organization; the DEK encrypts every value version with AES-256-GCM, bound by additional authenticated data to
// the secret's identity, so a ciphertext moved to another row does not decrypt.
import crypto from "crypto";
import fs from "fs";
import path from "path";
import { Config, ConfigError } from "../../lib/config";
import type { SettingValues } from "../../lib/settings";
import type secretsModule from "./secrets.module";

type SecretsSettings = SettingValues<NonNullable<(typeof secretsModule)["settings"]>>;

export interface MasterKey {
	id: string; // fingerprint stored beside each wrapped DEK: a wrong key is named, never used to produce garbage
	key: Buffer;
}

export interface MasterKeys {
	current: MasterKey;
	previous?: MasterKey; // set while rotating the master key
}

function parseKey(variable: string, raw: string): MasterKey {
	const text = raw.trim();
	let key: Buffer | undefined;
	if (/^[0-9a-f]{64}$/i.test(text)) key = Buffer.from(text, "hex");
	else if (/^[A-Za-z0-9+/_-]{43}=?$/.test(text))
		key = Buffer.from(text.replace(/-/g, "+").replace(/_/g, "/"), "base64");
	if (!key || key.length !== 32)
		throw new ConfigError(
			variable,
			"must be 32 bytes, as 64 hex characters or 44 base64 characters (openssl rand -base64 32)"
		);
	return { key, id: crypto.createHash("sha256").update(key).digest("hex").slice(0, 16) };
}

// MASTER_KEY (or MASTER_KEY_FILE) is required in cluster mode; an embedded install generates one into DATA_DIR.
export function loadMasterKeys(config: Pick<Config, "mode" | "dataDir">, settings: SecretsSettings): MasterKeys {
	let raw = settings.masterKey;
	let variable = "MASTER_KEY";
	if (!raw && settings.masterKeyFile) {
		variable = "MASTER_KEY_FILE";
		try {
			raw = fs.readFileSync(settings.masterKeyFile, "utf8");
		} catch (err: any) {
			throw new ConfigError(variable, `cannot read ${settings.masterKeyFile}: ${err.code}`);
		}
	}
	if (!raw) {
		if (config.mode === "cluster")
			throw new ConfigError(
				"MASTER_KEY",
				"is required by the secrets service in cluster mode (openssl rand -base64 32)"
			);
		const file = path.join(config.dataDir, "master-key");
		if (!fs.existsSync(file)) {
			fs.mkdirSync(config.dataDir, { recursive: true });
			fs.writeFileSync(file, crypto.randomBytes(32).toString("base64") + "\n", { mode: 0o600, flag: "wx" });
		}
		raw = fs.readFileSync(file, "utf8");
		variable = "DATA_DIR/master-key";
	}
	const current = parseKey(variable, raw);
	const previous = settings.masterKeyPrevious
		? parseKey("MASTER_KEY_PREVIOUS", settings.masterKeyPrevious)
		: undefined;
	return { current, previous };
}

export interface Sealed {
	ciphertext: Buffer;
	iv: Buffer;
	authTag: Buffer;
}

export function seal(key: Buffer, plaintext: Buffer, aad: string): Sealed {
	const iv = crypto.randomBytes(12);
	const cipher = crypto.createCipheriv("aes-256-gcm", key, iv);
	cipher.setAAD(Buffer.from(aad));
	const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
	return { ciphertext, iv, authTag: cipher.getAuthTag() };
}

export class DecryptError extends Error {
	name = "DecryptError";
}

export function open(key: Buffer, sealed: Sealed, aad: string): Buffer {
	try {
		const decipher = crypto.createDecipheriv("aes-256-gcm", key, sealed.iv);
		decipher.setAAD(Buffer.from(aad));
		decipher.setAuthTag(sealed.authTag);
		return Buffer.concat([decipher.update(sealed.ciphertext), decipher.final()]);
	} catch {
		throw new DecryptError("ciphertext does not authenticate (wrong key, or moved or altered data)");
	}
}

// A wrapped DEK is iv (12) | tag (16) | ciphertext (32), bound to its organization and key version.
export function wrapKey(kek: MasterKey, dek: Buffer, organizationId: string, keyVersion: number): Buffer {
	const s = seal(kek.key, dek, `dek:${organizationId}:${keyVersion}`);
	return Buffer.concat([s.iv, s.authTag, s.ciphertext]);
}

export function unwrapKey(kek: MasterKey, wrapped: Buffer, organizationId: string, keyVersion: number): Buffer {
	return open(
		kek.key,
		{ iv: wrapped.subarray(0, 12), authTag: wrapped.subarray(12, 28), ciphertext: wrapped.subarray(28) },
		`dek:${organizationId}:${keyVersion}`
	);
}

export const valueAad = (organizationId: string, secretId: string, version: number) =>
	`secret:${organizationId}:${secretId}:${version}`;

export const toBuffer = (v: unknown): Buffer => (Buffer.isBuffer(v) ? v : Buffer.from(v as Uint8Array));
