"""Synthetic court opinions with multi-label procedural postures, for the default posture model.

Everything is generated from a seed, so the corpus is reproducible without shipping data.

A document is generic legal boilerplate (caption, background, procedural history, standard of
review, discussion with citations, conclusion) with posture *cue* sentences inserted at random
sentence positions anywhere in the text, so a long document must be windowed to find them. Some
*distractor* sentences mention a posture term in a context that does not make it the document's
posture ("the court previously denied a motion to dismiss, and that ruling is not before us"), so
keyword matching alone is not enough.

A third of the cue phrasings, distractor frames and mentions, party surnames, company names and
boilerplate sentences is held out from training: validation and test documents use only those,
so their figures measure some generalisation. Validation and test share that pool, so that they
are two samples of one distribution and per-class thresholds tuned on validation carry over to
test. Each split has its own random stream, so validation and test do not move when ``n_train``
changes.

:func:`annotate` finds the cue and distractor sentences in a text again (the generator's
templates compiled to patterns), so training can label windows by the cues they contain.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

POSTURES: tuple[str, ...] = (
    "On Appeal",
    "Motion to Dismiss",
    "Motion for Summary Judgment",
    "Motion for Preliminary Injunction",
    "Motion to Compel",
    "Petition for Writ of Habeas Corpus",
)
SPLITS: tuple[str, ...] = ("train", "validation", "test")

# Slots: {p} / {d} the first / second party of the document (name, sometimes with a role),
# {court} a lower court, {date}, {act} an act to enjoin, {crime}; {mention} only in distractors.
CUES: Mapping[str, tuple[str, ...]] = {
    "On Appeal": (
        "{p} appeals from the judgment entered by the {court} on {date}.",
        "This is an appeal from an order of the {court} granting judgment in favor of {d}.",
        "{p} timely filed a notice of appeal, and we have jurisdiction under 28 U.S.C. § 1291.",
        "On appeal, {p} contends that the {court} erred in construing the agreement.",
        "For the reasons that follow, we affirm the judgment of the {court}.",
        "The appellant, {p}, asks this court to reverse the judgment below.",
        "{d} cross-appeals from the portion of the judgment that awarded attorney fees.",
        "Because the appellant has shown no reversible error, the judgment of the {court} is "
        "affirmed.",
        "In this appeal we must decide whether the {court} properly excluded the expert testimony.",
        "The appellee, {d}, urges us to affirm on an alternative ground.",
        "{p} now appeals, arguing that the verdict was against the weight of the evidence.",
        "We vacate the judgment of the {court} and remand for further proceedings consistent "
        "with this opinion.",
        "The appellant raises three issues on appeal, which we address in turn.",
        "We reverse the order of the {court} and remand with instructions.",
        "Our review of the record on appeal reveals no abuse of discretion by the {court}.",
        "{p} seeks review of the final judgment entered by the {court}.",
        "The {court} entered final judgment on {date}, and this timely appeal followed.",
        "Because the {court} applied the correct legal standard, we affirm its ruling.",
    ),
    "Motion to Dismiss": (
        "Before the court is the motion of {d} to dismiss the complaint under Federal Rule of "
        "Civil Procedure 12(b)(6).",
        "{d} moves to dismiss all claims for failure to state a claim upon which relief can be "
        "granted.",
        "{d} seeks dismissal of the amended complaint for lack of subject-matter jurisdiction.",
        "To survive a motion to dismiss, a complaint must contain sufficient factual matter to "
        "state a claim to relief that is plausible on its face.",
        "For the reasons below, the motion to dismiss filed by {d} is granted in part and denied "
        "in part.",
        "The pending Rule 12(b)(6) motion argues that the complaint fails to plead fraud with "
        "particularity.",
        "{d} has moved to dismiss for lack of personal jurisdiction, and {p} opposes the motion.",
        "In ruling on the present motion to dismiss, the court accepts the well-pleaded "
        "allegations of the complaint as true.",
        "{d} contends that the complaint must be dismissed because every claim is barred by the "
        "statute of limitations.",
        "The complaint is therefore dismissed without prejudice, and {p} may seek leave to amend.",
        "This matter comes before the court on the joint motion of the defendants to dismiss the "
        "action.",
        "Dismissal is warranted, {d} argues, because the complaint does not allege a cognizable "
        "injury.",
        "{d} asks the court to dismiss the complaint in its entirety.",
        "The allegations of the complaint, taken as true, are insufficient to withstand dismissal.",
        "The motion to dismiss counts two and three of the complaint is granted with leave to "
        "amend.",
        "{d} argues that the court lacks jurisdiction and that the action must therefore be "
        "dismissed.",
        "Because the complaint fails to state a plausible claim, it must be dismissed.",
        "Presently pending is a motion by {d} to dismiss the action for improper venue.",
    ),
    "Motion for Summary Judgment": (
        "Before the court is the motion of {p} for summary judgment.",
        "{d} moves for summary judgment on all remaining claims.",
        "Summary judgment is appropriate when there is no genuine dispute as to any material fact "
        "and the movant is entitled to judgment as a matter of law.",
        "The parties have filed cross-motions for summary judgment on the question of liability.",
        "In deciding the motion for summary judgment, the court views the evidence in the light "
        "most favorable to the nonmoving party.",
        "{d} argues that it is entitled to judgment as a matter of law because the record "
        "contains no evidence of causation.",
        "Because genuine issues of material fact remain for trial, the motion for summary "
        "judgment is denied.",
        "{p} seeks partial summary judgment on the breach of contract claim.",
        "The moving party bears the initial burden of identifying the portions of the record "
        "that show the absence of a genuine issue of material fact.",
        "The Rule 56 motion of {d} is granted, and judgment shall enter in its favor.",
        "Having reviewed the summary judgment record, including the depositions and exhibits, "
        "the court concludes that no reasonable jury could find for {p}.",
        "The nonmovant may not rest on the pleadings but must come forward with specific facts "
        "showing a genuine issue for trial.",
        "{p} has moved for summary judgment, and {d} opposes the motion.",
        "No genuine dispute of material fact exists, and summary judgment is therefore warranted.",
        "The court grants summary judgment to {d} on the negligence claim.",
        "On the undisputed facts, {p} is entitled to judgment as a matter of law.",
        "Presently pending is the motion of {d} for summary judgment under Rule 56.",
        "Because a reasonable jury could return a verdict for {p}, summary judgment is "
        "inappropriate.",
    ),
    "Motion for Preliminary Injunction": (
        "{p} moves for a preliminary injunction barring {d} from {act}.",
        "A party seeking a preliminary injunction must show a likelihood of success on the "
        "merits, irreparable harm, a favorable balance of equities, and that an injunction is in "
        "the public interest.",
        "{p} asks the court to enjoin {d} from {act} pending a final decision on the merits.",
        "Before the court is the application of {p} for a temporary restraining order and "
        "preliminary injunction.",
        "Because {p} has not shown irreparable harm, the request for preliminary injunctive "
        "relief is denied.",
        "{p} contends that, absent interim relief, it will suffer irreparable injury that money "
        "damages cannot repair.",
        "The motion for a preliminary injunction is granted, and {d} is restrained from {act} "
        "until further order of the court.",
        "A preliminary injunction is an extraordinary remedy that is never awarded as of right.",
        "{p} seeks emergency injunctive relief to preserve the status quo while this litigation "
        "proceeds.",
        "The court held an evidentiary hearing on the motion for a preliminary injunction on "
        "{date}.",
        "In weighing the equities, the court considers the hardship that an injunction pending "
        "trial would impose on {d}.",
        "{p} must post a bond as security before the preliminary injunction takes effect.",
        "The court will enjoin {d} from {act} while this case is pending.",
        "{p} has demonstrated a likelihood of success on the merits and a risk of irreparable "
        "harm.",
        "Presently pending is the motion of {p} for preliminary injunctive relief.",
        "A temporary restraining order issued on {date}, and the court now considers whether a "
        "preliminary injunction should follow.",
        "The balance of hardships and the public interest favor a preliminary injunction.",
        "{p} seeks an order preliminarily enjoining {d} from {act}.",
    ),
    "Motion to Compel": (
        "Before the court is the motion of {p} to compel discovery responses from {d}.",
        "{p} moves to compel {d} to produce documents responsive to its requests for production.",
        "{d} seeks an order compelling {p} to answer the interrogatories served on {date}.",
        "The motion to compel is granted, and {d} shall serve complete responses within fourteen "
        "days.",
        "{p} contends that the objections of {d} to the document requests are boilerplate and "
        "should be overruled.",
        "Under Rule 37(a), a party may move for an order compelling disclosure or discovery.",
        "{d} asks the court to compel the deposition of the corporate representative of {p}.",
        "The court finds that the requested discovery is relevant and proportional to the needs "
        "of the case and orders its production.",
        "Because {d} failed to meet and confer in good faith before filing, the motion to compel "
        "is denied.",
        "{p} seeks to compel production of the electronically stored information withheld on "
        "privilege grounds.",
        "The discovery dispute presented by this motion concerns the refusal of {d} to produce "
        "its internal emails.",
        "The joint letter of the parties on the motion to compel reflects an impasse over the "
        "scope of the search terms.",
        "{d} has refused to produce the requested documents, prompting this motion to compel.",
        "Presently pending is the motion of {p} to compel answers to its second set of "
        "interrogatories.",
        "The court orders {d} to produce the withheld documents within twenty-one days.",
        "{p} asks the court to compel {d} to supplement its deficient discovery responses.",
        "The motion to compel further deposition testimony is granted in part.",
        "Because the information sought is privileged, the request to compel its production is "
        "denied.",
    ),
    "Petition for Writ of Habeas Corpus": (
        "{p} petitions for a writ of habeas corpus under 28 U.S.C. § 2254.",
        "Petitioner {p}, a state prisoner proceeding pro se, challenges a conviction for {crime}.",
        "Before the court is a petition for a writ of habeas corpus filed by {p}.",
        "{p} seeks federal habeas relief, arguing that trial counsel was constitutionally "
        "ineffective.",
        "A federal court may not grant habeas relief unless the adjudication in state court was "
        "contrary to clearly established federal law.",
        "The habeas petition is denied, and no certificate of appealability shall issue.",
        "The respondent warden argues that the habeas petition is untimely under the one-year "
        "limitations period.",
        "{p} contends that detention by immigration authorities is unlawful and seeks release "
        "through a writ of habeas corpus under 28 U.S.C. § 2241.",
        "Because {p} failed to exhaust state remedies, the court cannot reach the merits of the "
        "petition for habeas corpus.",
        "The writ is granted, and the State shall release {p} unless it commences a new trial "
        "within ninety days.",
        "In the federal habeas petition, {p} raises four grounds for relief from a conviction "
        "for {crime}.",
        "{p}, who is in custody pursuant to the judgment of a state court, seeks collateral "
        "review of the sentence by way of habeas corpus.",
        "{p} filed this petition for habeas corpus while incarcerated at the state penitentiary.",
        "The court has reviewed the habeas petition, the answer of the respondent, and the "
        "state-court record.",
        "Habeas relief is unavailable because the state court reasonably applied federal law.",
        "Presently pending is the amended petition of {p} for a writ of habeas corpus.",
        "{p} asserts that the conviction violates due process and asks for a writ of habeas "
        "corpus.",
        "The respondent has answered the petition for habeas relief and filed the relevant "
        "transcripts.",
    ),
}

# A posture term in a context that does not make it the posture of the document.
DISTRACTOR_FRAMES: tuple[str, ...] = (
    "The court previously denied {mention}, and that ruling is not before us.",
    "Although {p} once threatened to file {mention}, no such filing was ever made.",
    "In an unrelated case, the same court resolved {mention} on similar facts.",
    "{d} withdrew {mention} before the hearing, and it is not at issue here.",
    "Nothing in this opinion addresses {mention}, which remains for another day.",
    "The parties stipulated that {mention} would not be pursued.",
    "The docket reflects that {mention} was denied as moot more than a year ago.",
    "Counsel referred at oral argument to {mention} filed in a separate action.",
    "The court expresses no view on whether {mention} would have succeeded.",
    "{p} cites a decision resolving {mention}, but that case is readily distinguishable.",
    "No party has filed {mention} in this action, and none is pending.",
    "The earlier proceedings on {mention} concluded long before the events at issue.",
    "A separate panel will consider {mention} in due course.",
    "{d} mentions {mention} only in a footnote, and the point is not developed.",
    "Any question regarding {mention} is outside the scope of this order.",
    "We note that {mention} was resolved by consent in an earlier case between other parties.",
    "It is unclear why {p} never filed {mention}, but the omission does not matter here.",
    "An earlier ruling on {mention} in a different matter has no bearing on this dispute.",
)
MENTIONS: Mapping[str, tuple[str, ...]] = {
    "On Appeal": (
        "an appeal",
        "an interlocutory appeal",
        "a notice of appeal",
        "an appeal of the fee award",
        "an appeal in the related bankruptcy case",
    ),
    "Motion to Dismiss": (
        "a motion to dismiss",
        "a Rule 12(b)(6) motion",
        "a motion to dismiss for improper venue",
        "the motion to dismiss the original complaint",
        "a motion to dismiss on forum grounds",
    ),
    "Motion for Summary Judgment": (
        "a motion for summary judgment",
        "a summary judgment motion",
        "a Rule 56 motion",
        "a motion for partial summary judgment",
        "cross-motions for summary judgment",
    ),
    "Motion for Preliminary Injunction": (
        "a motion for a preliminary injunction",
        "a request for a temporary restraining order",
        "a preliminary injunction",
        "an application for injunctive relief",
        "a motion to enjoin the sale",
    ),
    "Motion to Compel": (
        "a motion to compel",
        "a motion to compel discovery",
        "a request for an order compelling production",
        "a motion to compel the deposition",
        "a motion to compel further responses",
    ),
    "Petition for Writ of Habeas Corpus": (
        "a petition for a writ of habeas corpus",
        "a habeas petition",
        "a federal habeas petition",
        "a petition for habeas relief",
        "a successive habeas application",
    ),
}

# Boilerplate by section. Slots: {p} {d} {date} {year} {amount} {place} {thing} {cite} {statute}.
BOILERPLATE: Mapping[str, tuple[str, ...]] = {
    "facts": (
        "{p} and {d} entered into a written agreement on {date}.",
        "Under the agreement, {d} was to deliver {thing} to a warehouse in {place}.",
        "The shipment arrived several weeks late and, according to {p}, in damaged condition.",
        "{p} notified {d} of the problem in a letter dated {date}.",
        "The parties exchanged correspondence for several months without reaching a resolution.",
        "{d} maintains that it performed every obligation the contract imposed.",
        "According to the complaint, {p} lost roughly {amount} as a result.",
        "The events at issue took place in and around {place} during {year}.",
        "{p} had worked for {d} for nearly eleven years before the dispute arose.",
        "The record contains the testimony of several employees who witnessed the incident.",
        "In {year}, {d} changed its internal policies regarding {thing}.",
        "A former manager testified that the change was approved at the highest level.",
        "{p} alleges that the representations made by {d} were false when made.",
        "The property in question is a commercial building located in {place}.",
        "The relevant facts are largely undisputed and are drawn from the record.",
        "{d} disputes the account given by {p} in several respects.",
        "The parties later amended the agreement to extend the delivery schedule.",
        "An inspection conducted on {date} revealed significant defects in {thing}.",
    ),
    "procedure": (
        "{p} filed this action on {date}.",
        "The case was originally filed in state court and later removed.",
        "The parties completed briefing on {date}, and the court heard argument shortly after.",
        "{d} filed an answer denying the material allegations of the complaint.",
        "The court entered a scheduling order setting deadlines for the remaining proceedings.",
        "Discovery closed on {date}.",
        "The matter was reassigned to the undersigned in {year}.",
        "The complaint asserts claims for breach of contract, negligence, and unjust enrichment.",
        "{p} later filed an amended complaint adding a claim under {statute}.",
        "Both sides submitted supplemental letters addressing recent authority.",
        "The parties consented to the jurisdiction of a magistrate judge.",
        "A jury trial is currently set for the spring term.",
    ),
    "standard": (
        "Questions of statutory interpretation are questions of law.",
        "Findings of fact are reviewed for clear error, and legal conclusions are reviewed de "
        "novo.",
        "The court must apply the law as it exists at the time of its decision.",
        "A matter committed to discretion is reviewed only for abuse of that discretion.",
        "The burden rests on the party asserting the claim to establish each element.",
        "The court considers the pleadings, the exhibits attached to them, and matters of public "
        "record.",
        "Mixed questions of law and fact are reviewed under a standard that depends on the "
        "nature of the inquiry.",
        "The interpretation of an unambiguous contract is a matter of law for the court.",
        "Where the statutory text is plain, the inquiry ends there.",
        "The court draws all reasonable inferences from the evidence in a neutral manner.",
        "A decision rests on an error of law when it applies the wrong legal standard.",
        "Credibility determinations are the province of the finder of fact.",
    ),
    "analysis": (
        "The central question is whether the agreement required {d} to deliver {thing} by a "
        "fixed date.",
        "{p} argues that the plain language of the contract supports its reading.",
        "{d} responds that the provision is ambiguous and must be read in light of industry "
        "custom.",
        "We are not persuaded by this argument.",
        "The text of {statute} does not support the interpretation urged by {d}.",
        "Courts construing similar provisions have reached the same conclusion.",
        "The record does not show that {d} acted with the required intent.",
        "Nor does the legislative history suggest a different result.",
        "The parties dispute whether the notice sent on {date} was adequate.",
        "That argument overlooks the express terms of the agreement.",
        "Under the governing law of {place}, a party must give timely notice of a breach.",
        "The damages claimed by {p}, some {amount}, are not speculative.",
        "The evidence shows that {d} was aware of the defect well before {date}.",
        "This conclusion is consistent with the purpose of {statute}.",
        "The remaining arguments do not require extended discussion.",
        "The doctrine of waiver does not apply on these facts.",
        "Even assuming the provision were ambiguous, the extrinsic evidence points the same way.",
        "The reasoning of those decisions applies with equal force here.",
        "{d} also contends that the claim is preempted by {statute}.",
        "A contrary reading would render several provisions of the agreement superfluous.",
        "The testimony of the expert retained by {p} is consistent with the documentary record.",
        "The court declines to adopt a rule that would produce such an anomalous result.",
        "Neither party has identified controlling authority on this precise question.",
        "The claim for unjust enrichment fails because an express contract governs the "
        "relationship.",
        "{d} contends that the notice sent by {p} was untimely.",
        "{p} argues that the limitation of liability clause is unenforceable.",
        "{p} contends that the delay caused lost profits of about {amount}.",
        "{d} argues that the damages claimed are too speculative to recover.",
        "{p} filed a response, and {d} replied.",
    ),
    "conclusion": (
        "It is so ordered.",
        "The clerk is directed to enter judgment accordingly.",
        "Each party shall bear its own costs.",
        "The clerk shall close the case.",
        "A status conference will be scheduled by separate notice.",
        "The parties shall file a joint status report within thirty days.",
        "All other pending requests are denied as moot.",
        "The remaining deadlines in the scheduling order are unchanged.",
    ),
}
# Motions that are none of the postures, in the words the postures use, so that "before the
# court is", "moves", "seeks" or "asks the court" alone predict nothing. Like distractors, a
# document has only a few of them (not a boilerplate section that fills every paragraph).
OTHER_MOTIONS: tuple[str, ...] = (
    "Before the court is the motion of {d} to strike the supplemental expert report.",
    "Presently pending is the motion of {p} for leave to file a second amended complaint.",
    "{d} moves to transfer the case to the district where the warehouse is located.",
    "{p} seeks an award of attorney fees and costs under the contract.",
    "{d} asks the court to seal the exhibits that contain trade secrets.",
    "The court granted the unopposed motion of {p} to extend the briefing schedule.",
    "{p} moves in limine to exclude evidence of the settlement negotiations.",
    "Before the court is the request of {d} for reconsideration of the scheduling order.",
    "The court held a hearing on the pending motions on {date}.",
    "{p} asks the court to award prejudgment interest at the statutory rate.",
    "{d} seeks to recover the cost of the replacement {thing}.",
    "{p} moves to strike the affirmative defenses as insufficiently pleaded.",
    "The court orders the parties to submit a proposed form of judgment.",
    "{d} moves for an extension of time to respond to the amended complaint.",
    "{p} seeks leave to file a brief in excess of the page limit.",
)
CITATION_FORMS: tuple[str, ...] = (
    "See {cite}.",
    "See, e.g., {cite}; {cite}.",
    "{cite} (holding that {holding}).",
    "Cf. {cite}.",
    "See generally {cite} (explaining that {holding}).",
    "Accord {cite}.",
)
HOLDINGS: tuple[str, ...] = (
    "a contract must be read as a whole",
    "notice must be reasonable under the circumstances",
    "the plain meaning of a statute controls",
    "extrinsic evidence may not vary unambiguous terms",
    "a party may not benefit from its own breach",
    "the duty of good faith does not create new obligations",
    "courts do not rewrite agreements that parties have made",
    "a statute is construed to avoid surplusage",
)

# fmt: off
FIRST_NAMES: tuple[str, ...] = (
    "Maria", "James", "Aisha", "Robert", "Elena", "David", "Grace", "Samuel", "Priya", "Thomas",
    "Lucia", "Michael", "Hannah", "Daniel", "Fatima", "Joseph", "Olivia", "Andre", "Naomi",
    "Victor", "Sofia", "Kevin", "Irene", "Marcus", "Leah", "Carlos", "Julia", "Patrick",
)
SURNAMES: tuple[str, ...] = (
    "Alvarez", "Whitfield", "Okafor", "Brennan", "Castellano", "Nguyen", "Hargrove", "Lindqvist",
    "Montoya", "Pruitt", "Sato", "Delacroix", "Fitzgerald", "Kowalski", "Abernathy", "Ramirez",
    "Haddad", "Thornton", "Vasquez", "Mercer", "Oyelaran", "Blackwood", "Chen", "Dubois",
    "Eriksen", "Galloway", "Ibarra", "Jensen", "Kaminski", "Lorenzo", "Marchetti", "Novak",
    "Osei", "Petrov", "Quinlan", "Rasmussen", "Sandoval", "Tanaka", "Underwood", "Varga",
    "Weatherby", "Yilmaz", "Zamora", "Ashworth", "Bellamy", "Crowley",
)
COMPANY_STEMS: tuple[str, ...] = (
    "Harlow", "Northgate", "Bluewater", "Summit Ridge", "Ironwood", "Cedar Point", "Redstone",
    "Silver Lake", "Granite", "Meridian", "Oakhurst", "Pinecrest", "Riverside", "Keystone",
    "Lakeshore", "Fairmont", "Westbrook", "Highland", "Evergreen", "Stonebridge", "Brightwater",
    "Copperfield", "Driftwood", "Eastwind", "Foxhollow", "Goldcrest", "Hawthorne", "Juniper",
)
# fmt: on
COMPANY_KINDS: tuple[str, ...] = (
    "Logistics LLC",
    "Holdings Corporation",
    "Manufacturing Company",
    "Insurance Group",
    "Capital Partners LP",
    "Medical Center",
    "Construction LLC",
    "Foods Corporation",
    "Software Inc",
    "Transport Company",
)
ROLES: Mapping[str, tuple[str, ...]] = {
    "p": ("", "", "Plaintiff ", "plaintiff "),
    "d": ("", "", "Defendant ", "defendant "),
}
COURTS: tuple[str, ...] = (
    "United States District Court for the Northern District of Illinois",
    "United States District Court for the Southern District of New York",
    "United States District Court for the District of Massachusetts",
    "United States District Court for the Central District of California",
    "United States District Court for the Western District of Texas",
    "Supreme Court of the State of New York, Appellate Division",
    "Court of Appeals of Ohio, Eighth District",
    "United States Court of Appeals for the Ninth Circuit",
    "Superior Court of New Jersey",
    "Circuit Court of Cook County",
)
LOWER_COURTS: tuple[str, ...] = (
    "district court",
    "trial court",
    "bankruptcy court",
    "circuit court",
    "superior court",
    "court below",
)
ACTS: tuple[str, ...] = (
    "using the disputed trademark",
    "terminating the distribution agreement",
    "enforcing the noncompete covenant",
    "disclosing confidential customer lists",
    "proceeding with the scheduled foreclosure sale",
    "implementing the new zoning ordinance",
    "soliciting former clients",
)
CRIMES: tuple[str, ...] = (
    "armed robbery",
    "second-degree murder",
    "drug trafficking",
    "aggravated assault",
    "burglary",
    "wire fraud",
)
THINGS: tuple[str, ...] = (
    "industrial pumps",
    "medical supplies",
    "custom software",
    "steel beams",
    "refrigerated produce",
    "office furniture",
    "solar panels",
    "replacement parts",
)
PLACES: tuple[str, ...] = (
    "Springfield",
    "Riverton",
    "Lakewood",
    "Fairview",
    "Georgetown",
    "Ashland",
    "Milford",
    "Clayton",
)
STATUTES: tuple[str, ...] = (
    "42 U.S.C. § 1983",
    "the Fair Labor Standards Act",
    "the Lanham Act",
    "the Employee Retirement Income Security Act",
    "Section 10(b) of the Securities Exchange Act",
    "the state consumer protection statute",
    "the Uniform Commercial Code",
)
REPORTERS: tuple[tuple[str, str], ...] = (
    ("F.3d", "circuit"),
    ("F.4th", "circuit"),
    ("F.2d", "circuit"),
    ("F. Supp. 3d", "district"),
    ("F. Supp. 2d", "district"),
    ("U.S.", "supreme"),
    ("N.E.3d", "state"),
    ("P.3d", "state"),
    ("A.3d", "state"),
)
CITATION_COURTS: Mapping[str, tuple[str, ...]] = {
    "circuit": ("1st Cir.", "2d Cir.", "5th Cir.", "7th Cir.", "9th Cir.", "D.C. Cir."),
    "district": ("S.D.N.Y.", "N.D. Ill.", "D. Mass.", "C.D. Cal.", "E.D. Pa.", "W.D. Tex."),
    "supreme": ("",),
    "state": ("Ohio", "Cal.", "Mass.", "N.J.", "Ill. App. Ct.", "Colo."),
}
MONTHS: tuple[str, ...] = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
DOC_TITLES: tuple[str, ...] = ("OPINION", "MEMORANDUM OPINION AND ORDER", "OPINION AND ORDER", "")
HEADINGS: Mapping[str, tuple[str, ...]] = {
    "facts": ("BACKGROUND", "FACTUAL BACKGROUND", "Background"),
    "procedure": ("PROCEDURAL HISTORY", "Procedural History"),
    "standard": ("LEGAL STANDARD", "STANDARD OF REVIEW", "Applicable Standard"),
    "analysis": ("DISCUSSION", "ANALYSIS", "Discussion"),
    "conclusion": ("CONCLUSION", "Conclusion"),
}
_NUMERALS = ("I", "II", "III", "IV", "V")

# Shape of the corpus.
_N_POSTURES_WEIGHTS = (55, 35, 10)  # documents with 1, 2, 3 postures
_POSTURE_WEIGHTS = (30, 16, 16, 13, 12, 13)  # "On Appeal" is the most common posture
_WORDS_MIN, _WORDS_MAX = 150, 2500
_LONG_SHARE = 0.32  # documents drawn from the long part of the length range
_LONG_FROM = 1000  # words
_HELD_OUT = 1 / 3  # of every pool, for validation and test
_SLOT = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Document:
    text: str
    labels: tuple[str, ...]


@dataclass(frozen=True)
class Mention:
    """A cue (``cue=True``: the posture is the document's) or a distractor sentence, in chars."""

    start: int
    end: int
    posture: str
    cue: bool


@dataclass(frozen=True)
class _Inserted:
    text: str
    posture: str
    cue: bool


@dataclass(frozen=True)
class Pools:
    """What one split may draw from; the held-out parts of the lists above."""

    cues: Mapping[str, tuple[str, ...]]
    frames: tuple[str, ...]
    mentions: Mapping[str, tuple[str, ...]]
    motions: tuple[str, ...]
    boilerplate: Mapping[str, tuple[str, ...]]
    surnames: tuple[str, ...]
    companies: tuple[str, ...]


def _hold_out(items: tuple[str, ...], rng: random.Random) -> dict[str, tuple[str, ...]]:
    """Disjoint kept / held-out parts of ``items``, each in the original order."""
    order = list(items)
    rng.shuffle(order)
    held = set(order[: max(1, round(len(items) * _HELD_OUT))])
    return {
        "train": tuple(x for x in items if x not in held),
        "held": tuple(x for x in items if x in held),
    }


def split_pools(seed: int = 7) -> dict[str, Pools]:
    """Pools per split: training's, and the held-out one that validation and test share.

    Validation and test are two samples of one distribution (as thresholds tuned on one must
    carry over to the other), both unseen in training. Each list is cut by the seeded stream.
    """
    rng = random.Random(f"{seed}:pools")
    cues = {p: _hold_out(CUES[p], rng) for p in POSTURES}
    frames = _hold_out(DISTRACTOR_FRAMES, rng)
    mentions = {p: _hold_out(MENTIONS[p], rng) for p in POSTURES}
    motions = _hold_out(OTHER_MOTIONS, rng)
    boilerplate = {s: _hold_out(BOILERPLATE[s], rng) for s in BOILERPLATE}
    surnames = _hold_out(SURNAMES, rng)
    companies = _hold_out(COMPANY_STEMS, rng)
    pools = {
        part: Pools(
            cues={p: cues[p][part] for p in POSTURES},
            frames=frames[part],
            mentions={p: mentions[p][part] for p in POSTURES},
            motions=motions[part],
            boilerplate={s: boilerplate[s][part] for s in BOILERPLATE},
            surnames=surnames[part],
            companies=companies[part],
        )
        for part in ("train", "held")
    }
    return {"train": pools["train"], "validation": pools["held"], "test": pools["held"]}


@dataclass
class _Context:
    """One document's parties and random stream, for filling template slots."""

    rng: random.Random
    pools: Pools
    plaintiff: str
    defendant: str

    def fill(self, template: str, mention: str = "") -> str:
        """The template with its slots filled, as a sentence (first letter upper-case)."""
        text = _SLOT.sub(lambda m: self._value(m.group(1), mention), template)
        return text[:1].upper() + text[1:]

    def _value(self, slot: str, mention: str) -> str:
        rng = self.rng
        if slot in ("p", "d"):
            name = self.plaintiff if slot == "p" else self.defendant
            return rng.choice(ROLES[slot]) + name
        if slot == "mention":
            return mention
        if slot == "date":
            return f"{rng.choice(MONTHS)} {rng.randint(1, 28)}, {rng.randint(1998, 2023)}"
        if slot == "year":
            return str(rng.randint(1995, 2023))
        if slot == "amount":
            return f"${rng.randint(2, 950) * 1000:,}"
        if slot == "cite":
            return _citation(rng, self.pools)
        if slot == "holding":
            return rng.choice(HOLDINGS)
        simple = {
            "court": LOWER_COURTS,
            "act": ACTS,
            "crime": CRIMES,
            "thing": THINGS,
            "place": PLACES,
            "statute": STATUTES,
        }
        return rng.choice(simple[slot])


def _party(rng: random.Random, pools: Pools) -> str:
    if rng.random() < 0.5:
        return f"{rng.choice(FIRST_NAMES)} {rng.choice(pools.surnames)}"
    return f"{rng.choice(pools.companies)} {rng.choice(COMPANY_KINDS)}"


def _citation(rng: random.Random, pools: Pools) -> str:
    """e.g. "Alvarez v. Harlow Logistics LLC, 123 F.3d 456 (9th Cir. 1999)"."""
    reporter, level = rng.choice(REPORTERS)
    court = rng.choice(CITATION_COURTS[level])
    year = rng.randint(1965, 2023)
    where = f"{court} {year}" if court else str(year)
    first, second = rng.choice(pools.surnames), _party(rng, pools)
    return f"{first} v. {second}, {rng.randint(1, 999)} {reporter} {rng.randint(1, 1600)} ({where})"


def _target_words(rng: random.Random, long: bool) -> int:
    """Log-uniform lengths from the long or the short part of the range."""
    low, high = (_LONG_FROM, _WORDS_MAX) if long else (_WORDS_MIN, _LONG_FROM)
    return round(low * (high / low) ** rng.random())


def _paragraph(ctx: _Context, section: str) -> list[str | _Inserted]:
    """A few boilerplate sentences of one section, sometimes with a citation among them."""
    rng, pool = ctx.rng, ctx.pools.boilerplate[section]
    count = min(len(pool), rng.randint(2, 3) if section == "conclusion" else rng.randint(3, 6))
    sentences: list[str | _Inserted] = [ctx.fill(t) for t in rng.sample(pool, count)]
    if section in ("standard", "analysis") and rng.random() < 0.6:
        sentences.insert(rng.randint(1, len(sentences)), ctx.fill(rng.choice(CITATION_FORMS)))
    return sentences


def _sections(ctx: _Context, target_words: int) -> list[tuple[str, list[list[str | _Inserted]]]]:
    """Sections with paragraphs of sentences, about ``target_words`` words in all."""
    n = max(3, round(target_words / 70))
    plan = {"facts": max(1, round(n * 0.25)), "procedure": int(n >= 4), "standard": int(n >= 5)}
    plan["analysis"] = max(0, n - 1 - sum(plan.values()))
    plan["conclusion"] = 1
    return [
        (section, [_paragraph(ctx, section) for _ in range(count)])
        for section, count in plan.items()
        if count
    ]


def _choose_postures(rng: random.Random) -> tuple[str, ...]:
    count = rng.choices((1, 2, 3), weights=_N_POSTURES_WEIGHTS)[0]
    chosen: set[str] = set()
    while len(chosen) < count:
        chosen.add(rng.choices(POSTURES, weights=_POSTURE_WEIGHTS)[0])
    return tuple(p for p in POSTURES if p in chosen)


def _insertions(ctx: _Context, labels: tuple[str, ...]) -> list[_Inserted]:
    """One or two cues per posture, and up to three distractors (mostly of other postures)."""
    rng, pools = ctx.rng, ctx.pools
    out: list[_Inserted] = []
    for posture in labels:
        for template in rng.sample(pools.cues[posture], 2 if rng.random() < 0.25 else 1):
            out.append(_Inserted(ctx.fill(template), posture, True))
    others = [p for p in POSTURES if p not in labels]
    for _ in range(rng.choices((0, 1, 2, 3), weights=(45, 35, 15, 5))[0]):
        posture = rng.choice(others) if rng.random() < 0.85 else rng.choice(POSTURES)
        mention = rng.choice(pools.mentions[posture])
        out.append(_Inserted(ctx.fill(rng.choice(pools.frames), mention), posture, False))
    return out


def _render(
    ctx: _Context, sections: list[tuple[str, list[list[str | _Inserted]]]], title: str
) -> tuple[str, tuple[Mention, ...]]:
    """Join caption, headings and paragraphs; record where each inserted sentence landed."""
    headed = ctx.rng.random() < 0.7
    text = "\n".join(
        x for x in (f"{ctx.plaintiff} v. {ctx.defendant}", ctx.rng.choice(COURTS), title) if x
    )
    mentions: list[Mention] = []
    for number, (section, paragraphs) in enumerate(sections):
        if headed:
            text += f"\n\n{_NUMERALS[number]}. {ctx.rng.choice(HEADINGS[section])}"
        for paragraph in paragraphs:
            text += "\n\n"
            for i, sentence in enumerate(paragraph):
                text += " " if i else ""
                if isinstance(sentence, _Inserted):
                    end = len(text) + len(sentence.text)
                    mentions.append(Mention(len(text), end, sentence.posture, sentence.cue))
                    sentence = sentence.text
                text += sentence
    return text, tuple(mentions)


def compose(
    rng: random.Random, pools: Pools, long: bool = False
) -> tuple[Document, tuple[Mention, ...]]:
    """One document, and the cue and distractor sentences placed in it."""
    plaintiff = _party(rng, pools)
    defendant = _party(rng, pools)
    while defendant == plaintiff:
        defendant = _party(rng, pools)
    ctx = _Context(rng, pools, plaintiff, defendant)
    labels = _choose_postures(rng)
    sections = _sections(ctx, _target_words(rng, long))
    paragraphs = [paragraph for _, paras in sections for paragraph in paras]
    motions = rng.sample(pools.motions, rng.choices((0, 1, 2), weights=(30, 45, 25))[0])
    extra: list[str | _Inserted] = [*_insertions(ctx, labels), *(ctx.fill(m) for m in motions)]
    for inserted in extra:
        paragraph = rng.choice(paragraphs)
        paragraph.insert(rng.randint(0, len(paragraph)), inserted)
    text, mentions = _render(ctx, sections, rng.choice(DOC_TITLES))
    return Document(text, labels), mentions


def generate_annotated(
    seed: int = 7, n_train: int = 600, n_validation: int = 150, n_test: int = 150
) -> dict[str, list[tuple[Document, tuple[Mention, ...]]]]:
    """Like :func:`generate_splits`, with each document's cue and distractor sentences."""
    pools = split_pools(seed)
    sizes = {"train": n_train, "validation": n_validation, "test": n_test}
    out = {}
    for split in SPLITS:
        rng = random.Random(f"{seed}:{split}")
        n = sizes[split]
        # An exact share of long documents per split (so windowing matters in every split).
        long = [i < round(n * _LONG_SHARE) for i in range(n)]
        rng.shuffle(long)
        out[split] = [compose(rng, pools[split], flag) for flag in long]
    return out


def generate_splits(
    seed: int = 7, n_train: int = 600, n_validation: int = 150, n_test: int = 150
) -> dict[str, list[Document]]:
    """Documents per split ("train", "validation", "test"); same seed, same corpus."""
    annotated = generate_annotated(seed, n_train, n_validation, n_test)
    return {split: [doc for doc, _ in docs] for split, docs in annotated.items()}


def _pattern(template: str, mention: str = "") -> str:
    """A template as a regex: slots match within one sentence, the match starts a sentence."""
    parts = _SLOT.split(template)
    out = []
    for i, part in enumerate(parts):
        if i % 2 == 0:
            out.append(re.escape(part))
        else:
            out.append(mention if part == "mention" else _SLOT_PATTERN)
    return r"(?:^|(?<=\. ))" + "".join(out)


_SLOT_PATTERN = r"(?:(?!\. )[^\n])+?"


@cache
def _matchers() -> tuple[tuple[str, re.Pattern[str], str, bool], ...]:
    """(longest literal, pattern, posture, is_cue) for every cue and distractor template."""
    mentions = "|".join(
        re.escape(m) for p in POSTURES for m in sorted(MENTIONS[p], key=len, reverse=True)
    )
    out = []
    for posture in POSTURES:
        for template in CUES[posture]:
            out.append((_literal(template), re.compile(_pattern(template), re.M), posture, True))
    for frame in DISTRACTOR_FRAMES:
        pattern = re.compile(_pattern(frame, f"(?P<mention>{mentions})"), re.M)
        out.append((_literal(frame), pattern, "", False))
    return tuple(out)


def _literal(template: str) -> str:
    return max(_SLOT.split(template)[::2], key=len)


@cache
def _mention_postures() -> dict[str, str]:
    return {m: p for p in POSTURES for m in MENTIONS[p]}


def annotate(text: str) -> tuple[Mention, ...]:
    """The cue and distractor sentences of a generated text, found again from the templates.

    Lets training label windows by the cues they contain, from the text alone (e.g. read back
    from JSON Lines).
    """
    found = []
    for literal, pattern, posture, cue in _matchers():
        if literal not in text:  # cheap filter: most templates are absent from a document
            continue
        for match in pattern.finditer(text):
            which = posture or _mention_postures()[match.group("mention")]
            found.append(Mention(match.start(), match.end(), which, cue))
    return tuple(sorted(found, key=lambda m: (m.start, m.end)))


def write_jsonl(docs: Iterable[Document], path: str | Path) -> None:
    """Write one {"text", "labels"} object per line, UTF-8 (what posture calibration reads)."""
    with Path(path).open("w", encoding="utf-8") as f:
        for doc in docs:
            record = {"text": doc.text, "labels": list(doc.labels)}
            f.write(json.dumps(record, ensure_ascii=False) + "\n")


def read_jsonl(path: str | Path) -> list[Document]:
    """Read documents written by write_jsonl (blank lines are skipped)."""
    docs = []
    with Path(path).open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                record = json.loads(line)
                docs.append(Document(record["text"], tuple(record["labels"])))
    return docs
