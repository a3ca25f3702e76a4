// A handful of 24×24 stroke icons; each is a list of SVG path strings.
export const icons = {
	home: ["M3 10.5 12 3l9 7.5V20a1 1 0 0 1-1 1h-5v-6h-6v6H4a1 1 0 0 1-1-1z"],
	users: [
		"M16 21v-2a4 4 0 0 0-4-4H6a4 4 0 0 0-4 4v2",
		"M5 7a4 4 0 1 0 8 0a4 4 0 1 0-8 0",
		"M22 21v-2a4 4 0 0 0-3-3.87",
		"M16 3.13a4 4 0 0 1 0 7.75"
	],
	team: ["M3 4h7v7H3z", "M14 4h7v7h-7z", "M14 15h7v6h-7z", "M3 15h7v6H3z"],
	key: ["M2 15.5a5.5 5.5 0 1 0 11 0a5.5 5.5 0 1 0-11 0", "m21 2-9.6 9.6", "m15.5 7.5 3 3L22 7l-3-3"],
	settings: ["M4 21v-7", "M4 10V3", "M12 21v-9", "M12 8V3", "M20 21v-5", "M20 12V3", "M1 14h6", "M9 8h6", "M17 16h6"],
	logout: ["M9 21H5a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2h4", "m16 17 5-5-5-5", "M21 12H9"],
	plus: ["M12 5v14", "M5 12h14"],
	bell: ["M6 8a6 6 0 0 1 12 0c0 7 3 9 3 9H3s3-2 3-9", "M10.3 21a1.94 1.94 0 0 0 3.4 0"],
	copy: ["M9 9h11v11H9z", "M5 15H4V4h11v1"],
	check: ["M20 6 9 17l-5-5"],
	chevrons: ["m7 15 5 5 5-5", "m7 9 5-5 5 5"],
	x: ["M18 6 6 18", "m6 6 12 12"],
	menu: ["M4 6h16", "M4 12h16", "M4 18h16"],
	trash: ["M3 6h18", "M8 6V4h8v2", "m19 6-1 14H6L5 6"],
	building: [
		"M4 21V4a1 1 0 0 1 1-1h10a1 1 0 0 1 1 1v17",
		"M16 9h3a1 1 0 0 1 1 1v11",
		"M2 21h20",
		"M8 7h4",
		"M8 11h4",
		"M8 15h4"
	],
	activity: ["M22 12h-4l-3 9L9 3l-3 9H2"],
	arrow: ["M5 12h14", "m13 5 7 7-7 7"],
	plug: ["M9 2v6", "M15 2v6", "M6 8h12v4a6 6 0 0 1-12 0z", "M12 18v4"],
	flask: ["M9 3h6", "M10 3v6L4.5 19a1.3 1.3 0 0 0 1.1 2h12.8a1.3 1.3 0 0 0 1.1-2L14 9V3", "M7 15h10"],
	code: ["m8 6-6 6 6 6", "m16 6 6 6-6 6"],
	lock: ["M5 11h14v10H5z", "M8 11V7a4 4 0 0 1 8 0v4"],
	compare: ["M12 3v18", "M4 7h5", "M4 12h5", "M15 7h5", "M15 12h5", "M15 17h5"],
	book: ["M4 19.5v-15A2.5 2.5 0 0 1 6.5 2H20v20H6.5a2.5 2.5 0 0 1 0-5H20"],
	search: ["M11 3a8 8 0 1 0 0 16 8 8 0 1 0 0-16", "m21 21-4.3-4.3"]
} satisfies Record<string, string[]>;

export type IconName = keyof typeof icons;
